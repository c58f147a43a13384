#!/bin/sh
# keepalived's check: is the HAProxy whose pid is in $1 alive (and not a zombie)?
pid=$(cat "$1" 2>/dev/null) || exit 1
[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || exit 1
state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
[ "$state" != "Z" ] && [ "$state" != "X" ]
