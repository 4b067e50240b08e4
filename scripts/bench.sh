#!/usr/bin/env bash
# placeholder until its issue lands
echo "bench: nothing yet"
