# Recreates testdata/save-sample.txt in a private network namespace (never run it outside one):
#   unshare -n sh testdata/save-sample.sh > testdata/save-sample.txt
set -e
# foreign: docker-like
iptables -P FORWARD DROP
iptables -N DOCKER
iptables -N DOCKER-USER
iptables -N DOCKER-ISOLATION-STAGE-1
iptables -A FORWARD -j DOCKER-USER
iptables -A FORWARD -j DOCKER-ISOLATION-STAGE-1
iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables -A FORWARD -o docker0 -j DOCKER
iptables -A DOCKER-USER -j RETURN
iptables -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j RETURN
iptables -A INPUT -p tcp --dport 22 -m comment --comment "ssh \"admin\" access" -j ACCEPT
iptables -A INPUT -i lo -j ACCEPT
# ours (filter)
iptables -N CLUSTERCTL-FORWARD
iptables -A CLUSTERCTL-FORWARD -s 10.244.0.0/16 -m comment --comment "clusterctl: from pods" -j ACCEPT
iptables -A CLUSTERCTL-FORWARD -d 10.244.0.0/16 -m comment --comment "clusterctl: to pods" -j ACCEPT
iptables -I FORWARD -j CLUSTERCTL-FORWARD -m comment --comment clusterctl
iptables -N CLUSTERCTL-FIREWALL
iptables -A CLUSTERCTL-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP
iptables -A INPUT -j CLUSTERCTL-FIREWALL
iptables -A OUTPUT -j CLUSTERCTL-FIREWALL
# foreign user chain that (wrongly) jumps into ours
iptables -A DOCKER-USER -s 10.244.0.0/16 -g CLUSTERCTL-FORWARD
# nat: foreign
iptables -t nat -N DOCKER
iptables -t nat -N CNI-HOSTPORT-DNAT
iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
iptables -t nat -A DOCKER -i docker0 -j RETURN
# nat: ours (kube-proxy style)
iptables -t nat -N CLUSTERCTL-SERVICES
iptables -t nat -N CLUSTERCTL-SVC-WEB
iptables -t nat -N CLUSTERCTL-SEP-WEB1
iptables -t nat -N CLUSTERCTL-SEP-WEB2
iptables -t nat -N CLUSTERCTL-POSTROUTING
iptables -t nat -A CLUSTERCTL-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j CLUSTERCTL-SVC-WEB
iptables -t nat -A CLUSTERCTL-SVC-WEB -m statistic --mode random --probability 0.5 -j CLUSTERCTL-SEP-WEB1
iptables -t nat -A CLUSTERCTL-SVC-WEB -j CLUSTERCTL-SEP-WEB2
iptables -t nat -A CLUSTERCTL-SEP-WEB1 -s 10.244.1.2/32 -j MARK --set-xmark 0x4000/0x4000
iptables -t nat -A CLUSTERCTL-SEP-WEB1 -p tcp -j DNAT --to-destination 10.244.1.2:8080
iptables -t nat -A CLUSTERCTL-SEP-WEB2 -p tcp -j DNAT --to-destination 10.244.2.2:8080
iptables -t nat -A CLUSTERCTL-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
iptables -t nat -I PREROUTING -m comment --comment clusterctl -j CLUSTERCTL-SERVICES
iptables -t nat -I OUTPUT -m comment --comment clusterctl -j CLUSTERCTL-SERVICES
iptables -t nat -A POSTROUTING -m comment --comment clusterctl -j CLUSTERCTL-POSTROUTING
iptables -t nat -A POSTROUTING -m comment --comment clusterctl -j CLUSTERCTL-POSTROUTING
iptables-save -t filter
iptables-save -t nat
