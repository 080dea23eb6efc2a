#!/usr/bin/env bash
# check_kerac_saved.sh: does real Keras load the Functional models kerac saves? Writes every
# model of tests/fixtures/functional/ and tests/fixtures/seq/ (token inputs of None length,
# Embedding, Masking) with kc_save (build/tools/write_functional_models, write_seq_models) and runs
# tests/check_kerac_saved.py on each file: Keras 3 on the .keras file (predictions and one Adam
# step against the fixture) and on the JSON with its .weights.h5; tf.keras 2 on the .h5 file
# (predictions). Not part of `make test` (it needs the Python venvs).
#   K3=/path/to/python-with-keras3 TF2=/path/to/python-with-tf2.15 bash tests/check_kerac_saved.sh
set -u
cd "$(dirname "$0")/.."
K3=${K3:-python3}
TF2=${TF2:-}
make -s build/tools/write_functional_models build/tools/write_seq_models || exit 1
dir=$(mktemp -d)
build/tools/write_functional_models "$dir" || exit 1
build/tools/write_seq_models "$dir" || exit 1
fail=0
for f in "$dir"/*.keras; do
    n=$(basename "$f" .keras)
    KERAS_BACKEND=jax "$K3" tests/check_kerac_saved.py "$n" "$f" --step adam >"$dir/$n.k3.log" 2>&1 \
        && echo "Keras 3, $n.keras: PASS" || { echo "Keras 3, $n.keras: FAIL"; tail -3 "$dir/$n.k3.log"; fail=1; }
    KERAS_BACKEND=jax "$K3" tests/check_kerac_saved.py "$n" "$dir/$n.json" "$dir/$n.weights.h5" \
        >"$dir/$n.k3json.log" 2>&1 \
        && echo "Keras 3, $n.json + .weights.h5: PASS" || { echo "Keras 3, $n.json: FAIL"; tail -3 "$dir/$n.k3json.log"; fail=1; }
    if [ -n "$TF2" ]; then
        "$TF2" tests/check_kerac_saved.py "$n" "$dir/$n.h5" >"$dir/$n.tf2.log" 2>&1 \
            && echo "tf.keras 2, $n.h5: PASS" || { echo "tf.keras 2, $n.h5: FAIL"; tail -3 "$dir/$n.tf2.log"; fail=1; }
    fi
done
rm -rf "$dir"
exit $fail
