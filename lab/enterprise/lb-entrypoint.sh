#!/bin/sh
# Balancer container: HAProxy (pid file /run/haproxy.pid, tracked by keepalived) and
# keepalived in the foreground. The container ends when keepalived ends.
set -eu
haproxy -c -q -f /usr/local/etc/haproxy/haproxy.cfg
haproxy -D -p /run/haproxy.pid -f /usr/local/etc/haproxy/haproxy.cfg
exec keepalived -n -l -D -P -f /etc/keepalived/keepalived.conf
