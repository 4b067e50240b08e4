package dicomseg

import "math"

// RecommendedDisplayCIELabValue holds CIELab scaled to 0..65535 (PS3.3
// C.10.7.1.1): L* 0..100 and a*, b* -128..127 map linearly onto 0..65535. The
// conversion is sRGB (IEC 61966-2-1) -> XYZ -> CIELab against the D65 white, the
// one dcmqi and 3D Slicer use: pydicom's dcmqi-made liver sample decodes to
// Slicer's liver colour (221, 130, 101) within rounding.

var d65 = [3]float64{0.95047, 1.0, 1.08883}

// RGBToDICOMLab converts an sRGB colour to DICOM's scaled CIELab.
func RGBToDICOMLab(c [3]uint8) [3]uint16 {
	var lin [3]float64
	for i, v := range c {
		x := float64(v) / 255
		if x <= 0.04045 {
			lin[i] = x / 12.92
		} else {
			lin[i] = math.Pow((x+0.055)/1.055, 2.4)
		}
	}
	X := 0.4124564*lin[0] + 0.3575761*lin[1] + 0.1804375*lin[2]
	Y := 0.2126729*lin[0] + 0.7151522*lin[1] + 0.0721750*lin[2]
	Z := 0.0193339*lin[0] + 0.1191920*lin[1] + 0.9503041*lin[2]
	f := func(t float64) float64 {
		const e = 6.0 / 29
		if t > e*e*e {
			return math.Cbrt(t)
		}
		return t/(3*e*e) + 4.0/29
	}
	fx, fy, fz := f(X/d65[0]), f(Y/d65[1]), f(Z/d65[2])
	L, a, b := 116*fy-16, 500*(fx-fy), 200*(fy-fz)
	return [3]uint16{scale(L / 100), scale((a + 128) / 255), scale((b + 128) / 255)}
}

func scale(x float64) uint16 { return uint16(math.Round(math.Max(0, math.Min(1, x)) * 65535)) }

// DICOMLabToRGB converts DICOM's scaled CIELab back to sRGB (out-of-gamut
// colours are clipped).
func DICOMLabToRGB(v [3]uint16) [3]uint8 {
	L := float64(v[0]) / 65535 * 100
	a := float64(v[1])/65535*255 - 128
	b := float64(v[2])/65535*255 - 128
	fy := (L + 16) / 116
	fx, fz := fy+a/500, fy-b/200
	inv := func(t float64) float64 {
		const e = 6.0 / 29
		if t > e {
			return t * t * t
		}
		return 3 * e * e * (t - 4.0/29)
	}
	X, Y, Z := d65[0]*inv(fx), d65[1]*inv(fy), d65[2]*inv(fz)
	lin := [3]float64{
		3.2404542*X - 1.5371385*Y - 0.4985314*Z,
		-0.9692660*X + 1.8760108*Y + 0.0415560*Z,
		0.0556434*X - 0.2040259*Y + 1.0572252*Z,
	}
	var out [3]uint8
	for i, x := range lin {
		x = math.Max(0, math.Min(1, x))
		if x <= 0.0031308 {
			x *= 12.92
		} else {
			x = 1.055*math.Pow(x, 1/2.4) - 0.055
		}
		out[i] = uint8(math.Round(x * 255))
	}
	return out
}
