//go:build !amd64

package sgemm

func detect() bool { return false }

func kernel(kc int, a, b, c []float32) { kernelGo(kc, a, b, c) }

func detect512() bool { return false }

func kernel2(kc int, a, b, c []float32) {
	kernelGo(kc, a, b, c)
	kernelGo(kc, a[mr*kc:], b, c[mr*nr:])
}

func addTile(c []float32, ldc int, t []float32, rows, nn int, alpha float32) {
	addTileGo(c, ldc, t, rows, nn, alpha)
}

func setTile(c []float32, ldc int, t []float32, rows, nn int, alpha float32) {
	setTileGo(c, ldc, t, rows, nn, alpha)
}

func epiTile(c []float32, ldc int, rows, nn int, b []float32, relu bool) {
	epiTileGo(c, ldc, rows, nn, b, relu)
}

func kernelDirect(kc int, a []float32, lda int, b, c []float32) bool { return false }
