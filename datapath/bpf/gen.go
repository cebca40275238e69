package bpf

// clang 14 (Debian bookworm) is pinned: its output is byte-for-byte
// reproducible, which `make verify-generate` relies on.
//go:generate sh -c "clang --version | grep -q 'clang version 14\\.' || { echo 'bpf: need clang 14 (apt-get install clang-14)' >&2; exit 1; }"
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type ipcache_key -type ipcache_value -type endpoint_key -type endpoint_info -type policy_key -type policy_value -type lb_service_key -type lb_service_value -type lb_slot_key -type lb_backend -type lb_revnat -type lb_affinity_key -type lb_affinity_value -type sock_revnat_key -type ct_key -type ct_entry -type config -type flow_event -type metric -type masq_config -type nomasq_key -type lb_xlate_key -type lb_xlate -type global_config -type proxy_config weft c/weft.c
