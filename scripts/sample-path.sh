#!/usr/bin/env bash
# Prints the path of the bundled sample study that `make run` opens (MEDSA_SAMPLE overrides):
# a real T1 brain MR (3D). assets/sample/fundus.jpg is the 2D colour sample.
cd "$(dirname "$0")/.." && echo "${MEDSA_SAMPLE:-assets/sample/brain_t1.nii.gz}"
