//go:build !amd64

package par

// pause is a no-op off amd64.
func pause() {}
