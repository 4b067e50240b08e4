#!/usr/bin/env bash
# Path of the bundled sample study opened by make run.
cd "$(dirname "$0")/.." && echo assets/sample
