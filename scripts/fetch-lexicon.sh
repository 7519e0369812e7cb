#!/usr/bin/env bash
# `npm run fetch:lexicon`: the Chinese word list that the lexicon features of configs/resume.yaml and
# configs/weibo.yaml read (model.lexicon), into data/lexicon/jieba.dict.utf8 (git-ignored, 5 MB, 348,982 lines).
# It is jieba's dictionary (MIT licence) as cppjieba ships it inside the npm package nodejieba 3.5.8, taken from the
# npm registry's tarball (nothing is installed or built) and checked against the hash it was measured with.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/lexicon/jieba.dict.utf8
sha=3043b77068e09c9904f27cad82f12b6ebe9dbdb5aeff3b25e45ab7f9c1122b55
if [ -f "$out" ] && echo "$sha  $out" | sha256sum --check --status; then
  echo "$out is already here"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent nodejieba@3.5.8 >/dev/null)
tar -xzf "$tmp"/nodejieba-3.5.8.tgz -C "$tmp" package/submodules/cppjieba/dict/jieba.dict.utf8
mkdir -p "$(dirname "$out")"
echo "$sha  $tmp/package/submodules/cppjieba/dict/jieba.dict.utf8" | sha256sum --check --status || {
  echo "fetch-lexicon: the dictionary in nodejieba 3.5.8 does not have the expected sha256" >&2
  exit 1
}
mv "$tmp"/package/submodules/cppjieba/dict/jieba.dict.utf8 "$out.tmp" && mv "$out.tmp" "$out"
echo "wrote $out ($(wc -l < "$out") lines)"
