"""Minimal linker: one clang `-target bpf` object (a single .text, syscall relocations only)
-> an SBPFv0 shared object the Solana BPF loader accepts (ET_DYN, EM_BPF, vaddr == file offset,
syscalls left as `call -1` with R_BPF_64_32 dynamic relocations against named dynsyms, which the
loader resolves to murmur3 hashes).  Usage: python link_sbf.py in.o out.so"""

import struct
import sys
from pathlib import Path

R_BPF_64_32 = 10


def sections(obj: bytes):
    (shoff,) = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", obj, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize) for i in range(shnum)]
    stroff = hdrs[shstrndx][4]

    def name(off):
        return obj[stroff + off : obj.index(b"\0", stroff + off)].decode()

    return {name(h[0]): h for h in hdrs}, hdrs


def main(src: str, dst: str) -> None:
    obj = Path(src).read_bytes()
    assert obj[:4] == b"\x7fELF"
    assert struct.unpack_from("<H", obj, 0x12)[0] == 247
    named, hdrs = sections(obj)
    t = named[".text"]
    text = bytearray(obj[t[4] : t[4] + t[5]])
    # object symbols
    sym = named[".symtab"]
    strtab = hdrs[sym[6]]

    def symname(off):
        base = strtab[4]
        return obj[base + off : obj.index(b"\0", base + off)].decode()

    syms = [struct.unpack_from("<IBBHQQ", obj, sym[4] + i * 24) for i in range(sym[5] // 24)]
    entry = next(s[4] for s in syms if symname(s[0]) == "entrypoint")
    relocs = []  # (text offset, symbol name)
    for nm, h in named.items():
        if nm.startswith(".rel") and h[1] == 9:  # SHT_REL
            assert nm == ".rel.text", f"unexpected relocations in {nm} (no .rodata/.data allowed)"
            for i in range(h[5] // 16):
                off, info = struct.unpack_from("<QQ", obj, h[4] + i * 16)
                rtype, rsym = info & 0xFFFFFFFF, info >> 32
                s = syms[rsym]
                assert rtype == R_BPF_64_32, "only calls to undefined (syscall) symbols supported"
                assert s[3] == 0, "only calls to undefined (syscall) symbols supported"
                assert text[off] == 0x85, "relocation not on a call"
                text[off + 1] = 0  # src = 0: a syscall, not a pc-relative call
                struct.pack_into("<i", text, off + 4, -1)
                relocs.append((off, symname(s[0])))
    names = sorted({n for _, n in relocs})
    # dynstr
    dynstr = bytearray(b"\0")

    def addstr(s):
        o = len(dynstr)
        dynstr.extend(s.encode() + b"\0")
        return o

    ent_name = addstr("entrypoint")
    name_off = {n: addstr(n) for n in names}
    # layout
    EH, PH, NPH = 64, 56, 5

    def align(x, a=8):
        return (x + a - 1) // a * a

    text_off = align(EH + PH * NPH, 16)
    dynsym_off = align(text_off + len(text))
    dynsym_n = 2 + len(names)
    dynstr_off = dynsym_off + 24 * dynsym_n
    rel_off = align(dynstr_off + len(dynstr))
    rel_sz = 16 * len(relocs)
    dyn_off = align(rel_off + rel_sz)
    (
        DT_NULL,
        DT_STRTAB,
        DT_SYMTAB,
        DT_STRSZ,
        DT_SYMENT,
        DT_REL,
        DT_RELSZ,
        DT_RELENT,
        DT_TEXTREL,
        DT_FLAGS,
        _DT_RELCOUNT,
    ) = 0, 5, 6, 10, 11, 17, 18, 19, 22, 30, 0x6FFFFFFA
    dyn_entries = [
        (DT_FLAGS, 4),
        (DT_REL, rel_off),
        (DT_RELSZ, rel_sz),
        (DT_RELENT, 16),
        (DT_SYMTAB, dynsym_off),
        (DT_SYMENT, 24),
        (DT_STRTAB, dynstr_off),
        (DT_STRSZ, len(dynstr)),
        (DT_TEXTREL, 0),
        (DT_NULL, 0),
    ]
    dynamic = b"".join(struct.pack("<qQ", k, v) for k, v in dyn_entries)
    shstr = bytearray(b"\0")

    def addsh(s):
        o = len(shstr)
        shstr.extend(s.encode() + b"\0")
        return o

    shstr_off = dyn_off + len(dynamic)
    sh_names = {n: addsh(n) for n in [".text", ".dynsym", ".dynstr", ".rel.dyn", ".dynamic", ".shstrtab"]}
    shdr_off = align(shstr_off + len(shstr))
    out = bytearray(shdr_off + 64 * 7)
    # dynsym: null, entrypoint (FUNC GLOBAL in .text), syscalls (NOTYPE GLOBAL UND)
    dsyms = [
        struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0),
        struct.pack("<IBBHQQ", ent_name, 0x12, 0, 1, text_off + entry, len(text) - entry),
    ]
    dsyms += [struct.pack("<IBBHQQ", name_off[n], 0x10, 0, 0, 0, 0) for n in names]
    sym_index = {n: 2 + i for i, n in enumerate(names)}
    out[text_off : text_off + len(text)] = text
    out[dynsym_off : dynsym_off + 24 * dynsym_n] = b"".join(dsyms)
    out[dynstr_off : dynstr_off + len(dynstr)] = dynstr
    out[rel_off : rel_off + rel_sz] = b"".join(
        struct.pack("<QQ", text_off + off, (sym_index[n] << 32) | R_BPF_64_32) for off, n in relocs
    )
    out[dyn_off : dyn_off + len(dynamic)] = dynamic
    out[shstr_off : shstr_off + len(shstr)] = shstr
    # ELF header
    out[0:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", out, 16, 3, 247, 1, text_off + entry, EH, shdr_off, 0, EH, PH, NPH, 64, 7, 6)
    # program headers: PT_LOAD text (R X), PT_LOAD dyn tables (R), PT_LOAD .dynamic (RW), PT_DYNAMIC
    PT_LOAD, PT_DYNAMIC, R, W, X = 1, 2, 4, 2, 1
    phs = [
        (PT_LOAD, R | X, text_off, len(text)),
        (PT_LOAD, R, dynsym_off, dyn_off - dynsym_off),
        (PT_LOAD, R | W, dyn_off, len(dynamic)),
        (PT_DYNAMIC, R | W, dyn_off, len(dynamic)),
    ]
    phs += [(0x6474E551, R | W, 0, 0)]  # PT_GNU_STACK
    for i, (typ, fl, off, sz) in enumerate(phs):
        struct.pack_into("<IIQQQQQQ", out, EH + PH * i, typ, fl, off, off, off, sz, sz, 0x1000 if typ == PT_LOAD else 8)
    # section headers
    SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC, SHT_REL, SHT_DYNSYM = 1, 3, 6, 9, 11
    A, WR, EX = 2, 1, 4
    shs = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (sh_names[".text"], SHT_PROGBITS, A | EX, text_off, text_off, len(text), 0, 0, 8, 0),
        (sh_names[".dynsym"], SHT_DYNSYM, A, dynsym_off, dynsym_off, 24 * dynsym_n, 3, 1, 8, 24),
        (sh_names[".dynstr"], SHT_STRTAB, A, dynstr_off, dynstr_off, len(dynstr), 0, 0, 1, 0),
        (sh_names[".rel.dyn"], SHT_REL, A, rel_off, rel_off, rel_sz, 2, 0, 8, 16),
        (sh_names[".dynamic"], SHT_DYNAMIC, A | WR, dyn_off, dyn_off, len(dynamic), 3, 0, 8, 16),
        (sh_names[".shstrtab"], SHT_STRTAB, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0),
    ]
    for i, s in enumerate(shs):
        struct.pack_into("<IIQQQQIIQQ", out, shdr_off + 64 * i, *s)
    Path(dst).write_bytes(bytes(out))
    print(f"{dst}: {len(out)} bytes, entry {text_off + entry:#x}, syscall relocations {relocs}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
