// The CPlatform target only exposes include/platform.h to Swift.
