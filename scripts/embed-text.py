#!/usr/bin/env python3
"""Write a C file defining `const char SYMBOL[]` holding the bytes of INPUT."""
import sys

src, dst, symbol = sys.argv[1:4]
data = open(src, 'rb').read()
with open(dst, 'w') as out:
    out.write('/* Generated from %s; do not edit. */\n' % src.split('/')[-1])
    out.write('const char %s[] =\n        ""\n' % symbol)
    for line in data.decode('utf-8').splitlines(keepends=True):
        esc = line.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
        out.write('        "%s"\n' % esc)
    out.write('        ;\n')
