// glibc interfaces the Swift Glibc module does not carry.
#include <malloc.h>
