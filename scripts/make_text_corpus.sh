#!/usr/bin/env bash
# make_text_corpus.sh OUT [PER_CLASS]: a labelled text corpus from the man pages a Debian
# system ships, for examples/text_classifier.c: OUT/<section>/<name>.txt, one folder per
# section (man1 user commands, man3 library calls, man5 file formats, man8 admin commands),
# at most PER_CLASS (default 500) pages each, picked evenly from the sorted file list. The
# troff markup is stripped crudely (groff requests and macro definitions dropped, the man and
# mdoc macros reduced to their arguments, font and other escapes removed); the .TH line (which names the section) and the NAME line's
# "(n)" references to the page's own section are not kept, and .so links are skipped.
set -euo pipefail
out=${1:?usage: make_text_corpus.sh OUT [PER_CLASS]}
per=${2:-500}
man=${MANDIR:-/usr/share/man}
for sec in 1 3 5 8; do
    [ -d "$man/man$sec" ] || { echo "make_text_corpus: no $man/man$sec" >&2; exit 1; }
done
rm -rf "$out"
for sec in 1 3 5 8; do
    mkdir -p "$out/man$sec"
    # real pages only (not ".so other.1" links), sorted, then every k-th
    mapfile -t files < <(find "$man/man$sec" -maxdepth 1 -type f -name '*.gz' | LC_ALL=C sort)
    n=${#files[@]}
    step=$(( n > per ? n / per : 1 ))
    count=0
    for ((i = 0; i < n && count < per; i += step)); do
        f=${files[$i]}
        name=$(basename "$f" .gz)
        name=${name%.*}                 # ls.1 -> ls, Foo::Bar.3pm -> Foo::Bar
        name=${name//[^A-Za-z0-9._+-]/_}
        dst="$out/man$sec/$name.txt"
        [ -e "$dst" ] && continue
        zcat "$f" 2>/dev/null | awk '
            NR == 1 && /^\.so / { exit 1 }
            skip { if ($0 ~ /^\.\.[ \t]*$/) skip = 0; next }         # inside .de/.am/.ig
            /^[.'"'"'][ \t]*(de|de1|am|ig)([ \t]|$)/ { skip = 1; next }
            /^\.(TH|Dt|IX)[ \t]/ { next }       # the header (it names the section), index
            /^[.'"'"'][ \t]*\\/ { next }           # comments, the ends of conditionals
            /^[.'"'"'][ \t]*([a-z]|\.|$)/ { next }   # groff requests (lower case): no text
            {
                line = $0
                sub(/^[.'"'"'][A-Za-z]+[ \t]*/, "", line)     # a request: keep its arguments
                gsub(/\\f(\[[^]]*\]|\(..|.)/, "", line)      # font changes
                gsub(/\\\*(\[[^]]*\]|\(..|.)/, "", line)     # strings
                gsub(/\\\((..)/, "", line)                  # special characters
                gsub(/\\s[-+]?[0-9]/, "", line)              # size changes
                gsub(/\\[-e&|^%]/, "", line)
                gsub(/\\[(][^ ]*/, "", line)
                gsub(/"/, "", line)
                gsub(/\([0-9][a-z]*\)/, "", line)            # ls(1)-style references
                if (line != "") print line
            }' > "$dst" || { rm -f "$dst"; continue; }
        if [ "$(wc -c < "$dst")" -lt 200 ]; then rm -f "$dst"; continue; fi
        count=$((count + 1))
    done
    echo "man$sec: $count pages (of $n)"
done
