#!/bin/sh
# Rebuild cpi_memo_vault.so from cpi_memo_vault.c (Debian bookworm: apt-get install clang lld llvm).
set -eu
cd "$(dirname "$0")"
clang -target bpf -O2 -fno-builtin -ffreestanding -fno-stack-protector -c cpi_memo_vault.c -o cpi_memo_vault.o
"${PYTHON:-python3}" link_sbf.py cpi_memo_vault.o cpi_memo_vault.so
rm -f cpi_memo_vault.o
sha256sum cpi_memo_vault.so
