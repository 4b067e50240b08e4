#!/usr/bin/env bash
# placeholder until its issue lands
echo "fuzz: nothing yet"
