#!/bin/sh
# Fetches the GraphiQL files Numbra serves from the npm registry (npm checks each
# tarball's integrity) and puts them here, one folder per package@version, with
# each package's licence. Run it from anywhere after changing a version below,
# then change the same version in web/graphiql.py and README.md here.
set -eu

REACT=18.3.1
GRAPHIQL=3.9.0
EXPLORER=3.2.6           # @graphiql/plugin-explorer: built for GraphiQL 3.9 (@graphiql/react 0.29)
EXPLORER_CORE=0.9.0      # graphiql-explorer, bundled inside the plugin: only its licence is needed

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

unpack() {  # unpack PACKAGE VERSION: the npm tarball, into ./PACKAGE-VERSION
    tarball=$(npm pack --silent "$1@$2")
    mkdir "$1-$2" && tar xzf "$tarball" -C "$1-$2" --strip-components=1
}
vendor() {  # vendor FOLDER FROM FILE...: copy files of the unpacked FROM into FOLDER
    folder=$1 from=$2
    shift 2
    rm -rf "${here:?}/$folder" && mkdir -p "$here/$folder"
    for file in "$@"; do cp "$from/$file" "$here/$folder/"; done
}

unpack react $REACT
unpack react-dom $REACT
unpack graphiql $GRAPHIQL
mkdir -p @graphiql && unpack @graphiql/plugin-explorer $EXPLORER
unpack graphiql-explorer $EXPLORER_CORE

vendor "react@$REACT" "react-$REACT" umd/react.production.min.js LICENSE
vendor "react-dom@$REACT" "react-dom-$REACT" umd/react-dom.production.min.js LICENSE
vendor "graphiql@$GRAPHIQL" "graphiql-$GRAPHIQL" graphiql.min.js graphiql.min.css LICENSE
# The plugin's tarball has no licence file: it is MIT, from the GraphiQL repository
# (whose licence graphiql ships), and it bundles graphiql-explorer (MIT).
vendor "plugin-explorer@$EXPLORER" "@graphiql/plugin-explorer-$EXPLORER" dist/index.umd.js dist/style.css
cp "graphiql-$GRAPHIQL/LICENSE" "$here/plugin-explorer@$EXPLORER/LICENSE"
cp "graphiql-explorer-$EXPLORER_CORE/LICENSE" "$here/plugin-explorer@$EXPLORER/LICENSE.graphiql-explorer"
