#!/bin/bash
# Runs on every start: the tool the install hook put on PATH is found here.
set -euo pipefail
hello
