#!/usr/bin/env bash
# Outside referee for io/nifti: python3-nibabel reads real NIfTI/Analyze files and
# what medsa writes from them; affines must agree within 1e-4 mm, voxels exactly.
set -euo pipefail
cd "$(dirname "$0")/../.."
TD=.cache/testdata
G=$TD/github.com/okieraised/gonii/test_data
NB=$TD/python3-nibabel/usr/lib/python3/dist-packages/nibabel/tests/data
NP=$TD/python3-nipype/usr/lib/python3/dist-packages/nipype/testing/data
DP=$TD/python3-dipy/usr/lib/python3/dist-packages/dipy/data/files
IT=$TD/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data
files=(
  "$G"/int16.nii.gz "$G"/nii2_LR.nii.gz "$G"/nii2_RL.nii.gz "$G"/nii2_mni.nii.gz "$G"/rgb24.nii.gz
  "$G"/tensor_rgb.nii.gz "$G"/tensor_tr.nii.gz "$G"/t1.hdr.gz
  "$IT"/KmeansTest_T1UCharRaw.nii.gz "$IT"/KmeansTest_T1KmeansPrelimSegmentation.nii.gz
  "$NB"/anatomical.nii "$NB"/functional.nii "$NB"/example4d.nii.gz "$NB"/example_nifti2.nii.gz
  "$NB"/reoriented_anat_moved.nii "$NB"/resampled_anat_moved.nii "$NB"/standard.nii.gz
  "$NP"/segmentation1.nii.gz "$NP"/tpm_00.nii.gz "$NP"/ds003_sub-01_mc.nii.gz
  "$DP"/ascm_out_test.nii.gz "$DP"/small_25.nii.gz "$DP"/S0_10slices.nii.gz "$DP"/small_64D.nii
  "$TD"/ami.js/package/data/nifti/adi_slice.nii
)
for f in "${files[@]}"; do
  [ -s "$f" ] || { echo "nifti-referee: missing test file $f (run make testdata)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/niftidump" ./io/nifti/internal/niftidump
# Header quirks real files carry (qfac 0, negative/zero pixdim, bad xform codes, sform vs
# qform, no xform, scaling, every datatype, NIfTI-2 big endian, pairs, Analyze, 2D, 5D).
mapfile -t quirks < <(/usr/bin/python3 -W ignore scripts/referee/nifti_quirks.py "$tmp/quirks" "$NB"/anatomical.nii 2>/dev/null)
[ "${#quirks[@]}" -ge 20 ] || { echo "nifti-referee: quirk files not written"; exit 1; }
mkdir "$tmp/out"
"$tmp/niftidump" -o "$tmp/out" "${files[@]}" "${quirks[@]}"
/usr/bin/python3 -W ignore scripts/referee/nifti_referee.py "$tmp/out/medsa.json" 2> >(grep -v "setting\|not valid" >&2)
