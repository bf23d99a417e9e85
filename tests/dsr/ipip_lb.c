// SPDX-License-Identifier: Apache-2.0
// tests/dsr/ipip_lb.c: IPIP direct server return for a kernel without the ipip module, in tc-BPF.
//
// Two programs, both attached with `tc filter add dev eth0 ingress bpf direct-action obj ... sec S`:
//   tc/encap  (load balancer): a TCP packet to VIP:PORT_HTTP or VIP:PORT_VORTEX gets an outer IPv4
//             header (LB_IP -> chosen real server's IP, protocol 4) with bpf_skb_adjust_room(+20,
//             ENCAP_L3_IPV4), the real server's MAC as destination, and is sent back out of the
//             same device (bpf_redirect to egress). The real server is chosen by a hash of
//             (saddr, sport), so one connection always lands on one server.
//   tc/decap  (real server): an IPIP packet whose inner destination is VIP loses its outer header
//             (bpf_skb_adjust_room(-20, DECAP_L3_IPV4)) and goes up the stack, which delivers it to
//             the VIP on lo. Everything else passes untouched.
// Replies never pass the LB: the real server answers from VIP straight to the client (DSR).
// Addresses and MACs are compile-time constants (-DVIP=0x0a..., see tests/dsr_lab.sh); there are no
// maps. The tunnel costs 20 bytes per packet: real servers must advertise MSS <= MTU - 20 - 20 - 20
// (1440 for a 1500-byte underlay), hence `hawker serve --tcp-max-segment 1440` in the lab.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Flag values from include/uapi/linux/bpf.h (enum, so not testable with #ifdef; the
// DECAP flags appeared in 6.3, after the headers of this distribution).
#define HK_ADJ_ROOM_ENCAP_L3_IPV4 (1ULL << 1)
#define HK_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)

#ifndef VIP
#error "define VIP, LB_IP, RS1_IP, RS2_IP (host-order u32), LB_MAC, RS1_MAC, RS2_MAC (6 bytes), PORT_HTTP, PORT_VORTEX"
#endif

static const unsigned char lb_mac[ETH_ALEN] = {LB_MAC};
static const unsigned char rs1_mac[ETH_ALEN] = {RS1_MAC};
static const unsigned char rs2_mac[ETH_ALEN] = {RS2_MAC};

static __always_inline __u16 ip_csum(const struct iphdr *ip)
{
    const __u16 *w = (const __u16 *)ip;
    __u32 sum = 0;
#pragma unroll
    for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
        sum += w[i];
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

SEC("tc/encap")
int encap(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_TCP ||
        ip->daddr != bpf_htonl(VIP))
        return TC_ACT_OK;
    struct tcphdr *tcp = (void *)(ip + 1);
    if ((void *)(tcp + 1) > end)
        return TC_ACT_OK;
    __u16 dport = bpf_ntohs(tcp->dest);
    if (dport != PORT_HTTP && dport != PORT_VORTEX)
        return TC_ACT_OK;

    __u32 h = (bpf_ntohl(ip->saddr) ^ ((__u32)bpf_ntohs(tcp->source) << 16 | bpf_ntohs(tcp->source))) * 2654435761u;
    int second = (h >> 16) & 1;
    __u16 inner_len = bpf_ntohs(ip->tot_len);

    struct iphdr outer = {
        .version = 4,
        .ihl = 5,
        .tos = ip->tos,
        .tot_len = bpf_htons(inner_len + sizeof(struct iphdr)),
        .id = 0,
        .frag_off = bpf_htons(0x4000), // DF: the underlay must carry it whole
        .ttl = 64,
        .protocol = IPPROTO_IPIP,
        .check = 0,
        .saddr = bpf_htonl(LB_IP),
        .daddr = bpf_htonl(second ? RS2_IP : RS1_IP),
    };
    outer.check = ip_csum(&outer);

    if (bpf_skb_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, HK_ADJ_ROOM_ENCAP_L3_IPV4))
        return TC_ACT_SHOT;
    if (bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0))
        return TC_ACT_SHOT;
    struct ethhdr neth;
    __builtin_memcpy(neth.h_dest, second ? rs2_mac : rs1_mac, ETH_ALEN);
    __builtin_memcpy(neth.h_source, lb_mac, ETH_ALEN);
    neth.h_proto = bpf_htons(ETH_P_IP);
    if (bpf_skb_store_bytes(skb, 0, &neth, sizeof(neth), 0))
        return TC_ACT_SHOT;
    return bpf_redirect(skb->ifindex, 0);
}

SEC("tc/decap")
int decap(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_IPIP)
        return TC_ACT_OK;
    struct iphdr *inner = (void *)(ip + 1);
    if ((void *)(inner + 1) > end || inner->daddr != bpf_htonl(VIP))
        return TC_ACT_OK;
    if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, HK_ADJ_ROOM_DECAP_L3_IPV4))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
