package ebpf

// The C under bpf/ compiles with Debian's clang (make deps); the output is
// committed so that go build needs no clang. make verify regenerates and
// fails when the committed files differ.
//
//go:generate go tool bpf2go -target bpfel -cflags "-O2 -g -Wall -I/usr/include/x86_64-linux-gnu" -type lb4_fe_key -type lb4_fe -type lb4_svc -type lb4_slot_key -type lb4_backend -type lb4_revnat_key -type lb4_revnat_entry -type lb4_affinity_key -type lb4_affinity_entry -type lb4_svc_counters -type weir_reason -type lb4_fe_flags -type lb4_svc_flags socklb ../../bpf/sock_lb.c
//go:generate go tool bpf2go -target bpfel -cflags "-O2 -g -Wall -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -type ct4_key -type ct4_entry -type ct4_flags -type lb4_mgl_entry -type np_affinity_key -type np_affinity_entry -type np_svc_counters -type np_backend_key -type np_backend_counters -type weir_reason tcnp ../../bpf/tc_nodeport.c
//go:generate go tool bpf2go -target bpfel -cflags "-O2 -g -Wall -mcpu=v3 -I/usr/include/x86_64-linux-gnu" xdpnp ../../bpf/xdp_nodeport.c
