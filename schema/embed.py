#!/usr/bin/env python3
"""Writes a C file holding the migrations, in order, for server/migrate.c."""
import os
import sys


def c_string(text):
    out = []
    for line in text.splitlines(True):
        esc = line.replace('\\', '\\\\').replace('"', '\\"')
        esc = esc.replace('\t', '\\t').replace('\n', '\\n')
        out.append('\t"' + esc + '"')
    return '\n'.join(out) if out else '\t""'


def main():
    out_path, inputs = sys.argv[1], sorted(sys.argv[2:],
                                           key=os.path.basename)
    parts = ['/* Generated from the schema migrations by schema/embed.py. */',
             '#include "migrate.h"', '',
             'const struct migration migrations[] = {']
    for path in inputs:
        name = os.path.basename(path)
        version = int(name.split('_', 1)[0])
        with open(path, encoding='utf-8') as f:
            sql = f.read()
        parts.append('\t{%d, "%s",\n%s},' % (version, name, c_string(sql)))
    parts.append('};')
    parts.append('const int migrations_count = %d;' % len(inputs))
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(parts) + '\n')


if __name__ == '__main__':
    main()
