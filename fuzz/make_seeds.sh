#!/usr/bin/env bash
# Writes fuzz/corpus/<harness>/: seeds kerac saves itself (fuzz/make_seeds.c, built against the
# fuzz build's library: `make fuzz-seeds`), small files written here by hand, and a few of the
# test suite's small fixtures. Deterministic; rerun after a format change and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${FUZZ_BUILD:-build-fuzz}
C=fuzz/corpus
F=tests/fixtures
SEP=$'\n--KCFZ--\n'
rm -rf "$C"
for h in fuzz_idx fuzz_json_config fuzz_keras_zip fuzz_h5 fuzz_npy fuzz_csv fuzz_image fuzz_text; do
    mkdir -p "$C/$h"
done
"$B/make_seeds" "$C"

# IDX: ubyte arrays of rank 1, 2, 3 (magic 0 0 8 rank, big-endian dims), raw and gzip
printf '\0\0\x08\x01\0\0\0\x05\x01\x02\x03\x04\x05' >"$C/fuzz_idx/rank1"
printf '\0\0\x08\x02\0\0\0\x02\0\0\0\x03abcdef' >"$C/fuzz_idx/rank2"
{ printf '\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02'; printf '\x00\x10\x20\x30\x40\x50\x60\x70'; } >"$C/fuzz_idx/rank3"
for f in rank1 rank3; do gzip -9n <"$C/fuzz_idx/$f" >"$C/fuzz_idx/$f.gz"; done

# JSON configs: the small fixtures
for f in $F/cli/mlp.json $F/custom/tf2_antirectifier.json $F/custom/antirectifier_rank3.json; do
    cp "$f" "$C/fuzz_json_config/"
done

# .keras: a Keras 3 file of the fixtures, split into its parts, and one whole (the zip reader)
for f in $F/saved/k3_initreg.keras $F/seq2/srnn_gap.keras; do
    b=$(basename "$f" .keras)
    { unzip -p "$f" config.json; printf '%s' "$SEP"; unzip -p "$f" metadata.json; printf '%s' "$SEP"
      unzip -p "$f" model.weights.h5; } >"$C/fuzz_keras_zip/$b.parts"
done
cp $F/saved/k3_initreg.keras "$C/fuzz_keras_zip/"

# HDF5: a Keras 2 legacy full model and Keras 2 weights (first byte: 0 kc_load, 1 weights)
{ printf '\0'; cat $F/keras2/keras20_list.h5; } >"$C/fuzz_h5/keras20_list.h5"
{ printf '\1'; cat $F/saved/tf2_rmsprop_weights.h5; } >"$C/fuzz_h5/tf2_rmsprop_weights.h5"

# NPY: the fixtures alone, and x/y pairs for the npz and X.npy,Y.npy paths
for f in $F/data/*.npy; do cp "$f" "$C/fuzz_npy/"; done
{ cat $F/data/x_f4.npy; printf '%s' "$SEP"; cat $F/data/y_i8.npy; } >"$C/fuzz_npy/pair_f4_i8"
{ cat $F/data/x_u1.npy; printf '%s' "$SEP"; cat $F/data/y_f4_2d.npy; } >"$C/fuzz_npy/pair_u1_f4"
{ cat $F/data/x_f8_be.npy; printf '%s' "$SEP"; cat $F/data/y_i4_5.npy; } >"$C/fuzz_npy/pair_f8_i4"

# CSV
printf 'a,b,label\n1,2,0\n3.5,-4e2,1\n5,6,2\n' >"$C/fuzz_csv/header_label.csv"
printf '#b\nx,b,c\n1,2,3\n4,5,6\n' >"$C/fuzz_csv/column_by_name.csv"
printf '#-1\n"x","y"\n1.5,0.25\r\n2,0.5\r\n' >"$C/fuzz_csv/quoted_crlf.csv"
printf 'p,q,r\n1,,3\nnan,inf,1\n' >"$C/fuzz_csv/empty_nan.csv"
head -n 4 $F/cli/test8.csv >"$C/fuzz_csv/test8_head.csv"

# images: the first byte picks the name (0 png, 1 jpg, 2 bmp, 3 pgm), channels and resize
for f in gray.png rgb.png rgba.png; do { printf '\0'; cat $F/data/$f; } >"$C/fuzz_image/$f"; done
{ printf '\x11'; cat $F/data/photo.jpg; } >"$C/fuzz_image/photo.jpg"
for f in gray.bmp rgb.bmp palette.bmp; do { printf '\x0a'; cat $F/data/$f; } >"$C/fuzz_image/$f"; done
for f in gray.pgm rgb.ppm; do { printf '\x17'; cat $F/data/$f; } >"$C/fuzz_image/$f"; done
{ printf '\x03'; printf 'P2\n# ascii\n3 2\n255\n0 1 2\n250 251 255\n'; } >"$C/fuzz_image/ascii.pgm"

# text: 0 word index, 1 npz sequences, 2 imdb.npz, 3 TextVectorization
{ printf '\0\0'; printf '{"the": 1, "and": 2, "a": 3, "of": 4, "br": 7}'; } >"$C/fuzz_text/word_index"
{ printf '\1\0'; cat $F/data/y_i8.npy; } >"$C/fuzz_text/ints"
{ printf '\1\0'; unzip -p $F/text/imdb_tiny.npz x_train.npy; } >"$C/fuzz_text/pickle_seqs"
{ printf '\2\0'; unzip -p $F/text/imdb_tiny.npz x_train.npy; printf '%s' "$SEP"
  unzip -p $F/text/imdb_tiny.npz y_train.npy; printf '%s' "$SEP"
  unzip -p $F/text/imdb_tiny.npz x_test.npy; printf '%s' "$SEP"
  unzip -p $F/text/imdb_tiny.npz y_test.npy; } >"$C/fuzz_text/imdb_tiny"
for m in 0x10 0x81 0x60 0x0b; do
    { printf "\\3\\$(printf '%03o' $m)"; printf 'The cat sat.\nthe dog, the cat!\nA b c d'
      printf '%s' "$SEP"; printf 'the cat\nunknown words here\n'; } >"$C/fuzz_text/tv_$m"
done
