// SPDX-License-Identifier: Apache-2.0
//
// Levee's XDP drop program.
//
// Parses Ethernet (with up to two 802.1Q / 802.1ad tags), IPv4 and IPv6 (with
// up to eight extension headers, fragments included) and drops a packet when
//   (a) its source address is in a source set (LPM tries `src_v4`, `src_v6`,
//       value = counter slot), or
//   (b) it matches an active entry of the active rule table `rules[meta[0]]`
//       (first match wins; each entry names its counter slot).
// Everything else passes. Per-slot packet/byte counters live in the per-CPU
// array `stats`; `totals` counts every packet seen (0) and dropped (1).
//
// Match semantics follow levee-packet's fingerprints
// (crates/levee-packet/src/classify/fingerprint.rs) and its decoder
// (crates/levee-packet/src/decode.rs), so a fingerprint turned into rules drops
// what the fingerprint describes. The Rust side (crates/levee-xdp/src/rule.rs,
// table.rs) encodes `struct rule` and `struct ruleset` byte for byte; the
// _Static_asserts below pin the layout both sides rely on.
//
// Built by crates/levee-xdp/build.rs with `clang -target bpf -O2 -g`.

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define MAX_RULES 64
#define MAX_SLOTS 256
#define MAX_PREFIXES 65536
#define MAX_VLAN_TAGS 2
#define MAX_EXT_HEADERS 8
/* Offsets into the IP packet are kept below this so the verifier can bound
 * every packet access; real headers are far shorter. */
#define MAX_L3_HEADER 4096

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_QINQ_OLD 0x9100

#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58

/* Which conditions of a rule are active (struct rule.flags). */
#define R_IPVER (1 << 0)
#define R_PROTO (1 << 1)
#define R_SPORT (1 << 2)
#define R_DPORT (1 << 3)
#define R_LEN (1 << 4)
#define R_TTL (1 << 5)
#define R_TCPFLAGS (1 << 6)
#define R_ICMP (1 << 7)
#define R_FRAG (1 << 8)
/* Non-first fragments match (their transport conditions are not applied). */
#define R_TAILS (1 << 9)

struct rule {
	__u32 slot;
	__u16 flags;
	__u8 ip_version;
	__u8 protocol;
	__u16 sport_lo, sport_hi;
	__u16 dport_lo, dport_hi;
	__u16 len_lo, len_hi;
	__u8 ttl_lo, ttl_hi;
	__u8 tcp_mask, tcp_value;
	__u8 icmp_lo, icmp_hi;
	__u8 frag; /* with R_FRAG: 0 unfragmented only, 1 fragments only */
	__u8 pad;
};

_Static_assert(sizeof(struct rule) == 28, "struct rule layout (rule.rs RULE_SIZE)");
_Static_assert(__builtin_offsetof(struct rule, sport_lo) == 8, "rule.sport_lo");
_Static_assert(__builtin_offsetof(struct rule, len_lo) == 16, "rule.len_lo");
_Static_assert(__builtin_offsetof(struct rule, ttl_lo) == 20, "rule.ttl_lo");
_Static_assert(__builtin_offsetof(struct rule, frag) == 26, "rule.frag");

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, __u32);
} src_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6);
	__type(value, __u32);
} src_v6 SEC(".maps");

/* The rule table, double-buffered: the loader writes a whole table into the
 * inactive element, then flips meta[0] to it (one 4-byte store), so a packet
 * never sees a rule half-written. */
struct ruleset {
	__u32 count; /* entries r[0..count) are active */
	__u32 pad;
	struct rule r[MAX_RULES];
};

_Static_assert(sizeof(struct ruleset) == 8 + 28 * MAX_RULES, "ruleset layout (table.rs)");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct ruleset);
} rules SEC(".maps");

/* meta[0]: which element of `rules` is active (0 or 1). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct counter);
} stats SEC(".maps");

/* totals[0]: every packet the program saw; totals[1]: every packet dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct counter);
} totals SEC(".maps");

/* What the rules look at, one per packet. */
struct pkt {
	__u8 ipver;
	__u8 proto;
	__u8 ttl;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 has_ports;
	__u8 has_icmp;
	__u8 is_frag;
	__u8 is_tail;
	__u16 sport;
	__u16 dport;
	__u16 ip_len;
	__u8 src[16];
};

static __always_inline void count(void *map, __u32 key, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &key);

	if (c) {
		/* Per-CPU values: no other writer, no atomics needed. */
		c->packets += 1;
		c->bytes += bytes;
	}
}

/* Transport fields from the `avail` bytes at `l4` (not past the IP length).
 * levee-packet rejects an unfragmented packet whose transport header is cut
 * off (-1 here: passed untouched); a first fragment that short simply has no
 * transport fields. */
static __always_inline int parse_l4(__u8 *h, void *data_end, __u32 avail, struct pkt *p)
{
	if (p->is_tail)
		return 0;
	if (p->proto == IPPROTO_TCP_) {
		if (avail < 20)
			return p->is_frag ? 0 : -1;
		if ((void *)(h + 20) > data_end)
			return -1;
		p->tcp_flags = h[13];
	} else if (p->proto == IPPROTO_UDP_) {
		if (avail < 8)
			return p->is_frag ? 0 : -1;
		if ((void *)(h + 8) > data_end)
			return -1;
	} else if (p->proto == IPPROTO_ICMP_ || p->proto == IPPROTO_ICMPV6_) {
		if (avail < 4)
			return p->is_frag ? 0 : -1;
		if ((void *)(h + 4) > data_end)
			return -1;
		p->icmp_type = h[0];
		p->has_icmp = 1;
		return 0;
	} else {
		return 0;
	}
	p->sport = ((__u16)h[0] << 8) | h[1];
	p->dport = ((__u16)h[2] << 8) | h[3];
	p->has_ports = 1;
	return 0;
}

static __always_inline int parse_ipv4(void *ip, void *data_end, struct pkt *p)
{
	__u8 *h = ip;
	__u32 captured, total, ihl, end, frag, offset;

	if ((void *)(h + 20) > data_end)
		return -1;
	ihl = (h[0] & 0x0f) * 4;
	if (ihl < 20)
		return -1;
	captured = (__u32)((long)data_end - (long)ip);
	if (captured < ihl)
		return -1;
	total = ((__u32)h[2] << 8) | h[3];
	if (total == 0)
		total = captured; /* TSO on the sending host: length left 0 */
	if (total < ihl)
		return -1;
	end = total < captured ? total : captured;
	frag = ((__u32)h[6] << 8) | h[7];
	offset = (frag & 0x1fff) << 3;
	p->ipver = 4;
	p->ttl = h[8];
	p->proto = h[9];
	p->is_frag = (frag & 0x2000) || offset;
	p->is_tail = offset != 0;
	p->ip_len = total > 0xffff ? 0xffff : total;
	__builtin_memcpy(p->src, h + 12, 4);
	return parse_l4(h + ihl, data_end, end - ihl, p);
}

static __always_inline int parse_ipv6(void *ip, void *data_end, struct pkt *p)
{
	__u8 *h = ip;
	__u32 captured, declared, end, at = 40;
	__u8 next;

	if ((void *)(h + 40) > data_end)
		return -1;
	captured = (__u32)((long)data_end - (long)ip);
	if (captured > 0xffff + 40)
		return -1;
	declared = ((__u32)h[4] << 8) | h[5];
	if (declared == 0)
		declared = captured - 40; /* jumbogram or offload */
	end = 40 + declared < captured ? 40 + declared : captured;
	next = h[6];
	p->ipver = 6;
	p->ttl = h[7];
	p->ip_len = 40 + declared > 0xffff ? 0xffff : 40 + declared;
	__builtin_memcpy(p->src, h + 8, 16);

#pragma clang loop unroll(disable)
	for (int i = 0; i < MAX_EXT_HEADERS; i++) {
		__u8 *x;

		if (at > MAX_L3_HEADER)
			return -1;
		x = h + at;
		if (next == 0 || next == 43 || next == 60 || next == 135 || next == 139 ||
		    next == 140) {
			if (at + 2 > end || (void *)(x + 2) > data_end)
				return -1;
			next = x[0];
			at += ((__u32)x[1] + 1) * 8;
		} else if (next == IPPROTO_AH_) {
			if (at + 2 > end || (void *)(x + 2) > data_end)
				return -1;
			next = x[0];
			at += ((__u32)x[1] + 2) * 4;
		} else if (next == 44) {
			__u16 field;

			if (at + 8 > end || (void *)(x + 8) > data_end)
				return -1;
			field = ((__u16)x[2] << 8) | x[3];
			next = x[0];
			at += 8;
			p->is_frag = 1;
			if (field & 0xfff8) {
				p->is_tail = 1;
				break;
			}
		} else {
			break;
		}
	}
	if (at > end || at > MAX_L3_HEADER)
		return -1;
	p->proto = next;
	return parse_l4(h + at, data_end, end - at, p);
}

/* 0: parsed into `p`; -1: not IP or malformed (passed untouched). */
static __always_inline int parse(void *data, void *data_end, struct pkt *p)
{
	__u8 *eth = data;
	__u32 off = 14;
	__u16 type;

	if ((void *)(eth + 14) > data_end)
		return -1;
	type = ((__u16)eth[12] << 8) | eth[13];
#pragma clang loop unroll(full)
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (type != ETH_P_8021Q_ && type != ETH_P_8021AD_ && type != ETH_P_QINQ_OLD)
			break;
		if ((void *)(eth + off + 4) > data_end)
			return -1;
		type = ((__u16)eth[off + 2] << 8) | eth[off + 3];
		off += 4;
	}
	if (type != ETH_P_IPV4 && type != ETH_P_IPV6_)
		return -1;
	if ((void *)(eth + off + 1) > data_end)
		return -1;
	/* Like levee-packet, trust the version nibble over the EtherType. */
	if ((eth[off] >> 4) == 4)
		return parse_ipv4(eth + off, data_end, p);
	if ((eth[off] >> 4) == 6)
		return parse_ipv6(eth + off, data_end, p);
	return -1;
}

static __always_inline int in_range16(__u16 v, __u16 lo, __u16 hi)
{
	return v >= lo && v <= hi;
}

static __always_inline int rule_matches(const struct rule *r, const struct pkt *p)
{
	__u16 f = r->flags;

	if ((f & R_IPVER) && r->ip_version != p->ipver)
		return 0;
	if ((f & R_PROTO) && r->protocol != p->proto)
		return 0;
	if ((f & R_FRAG) && r->frag != p->is_frag)
		return 0;
	if (p->is_tail) {
		if (!(f & R_TAILS))
			return 0;
	} else {
		if ((f & R_SPORT) && !(p->has_ports && in_range16(p->sport, r->sport_lo, r->sport_hi)))
			return 0;
		if ((f & R_DPORT) && !(p->has_ports && in_range16(p->dport, r->dport_lo, r->dport_hi)))
			return 0;
		if ((f & R_TCPFLAGS) &&
		    !(p->proto == IPPROTO_TCP_ && p->has_ports &&
		      (p->tcp_flags & r->tcp_mask) == r->tcp_value))
			return 0;
		if ((f & R_ICMP) &&
		    !(p->has_icmp && p->icmp_type >= r->icmp_lo && p->icmp_type <= r->icmp_hi))
			return 0;
	}
	if ((f & R_LEN) && !in_range16(p->ip_len, r->len_lo, r->len_hi))
		return 0;
	if ((f & R_TTL) && !(p->ttl >= r->ttl_lo && p->ttl <= r->ttl_hi))
		return 0;
	return 1;
}

static __always_inline int drop(__u32 slot, __u64 bytes)
{
	if (slot < MAX_SLOTS)
		count(&stats, slot, bytes);
	count(&totals, 1, bytes);
	return XDP_DROP;
}

SEC("xdp")
int levee_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = (__u64)((long)data_end - (long)data);
	struct pkt p = {};
	__u32 zero = 0, n, *active, *slot;
	struct ruleset *set;

	count(&totals, 0, bytes);
	if (parse(data, data_end, &p) < 0)
		return XDP_PASS;

	if (p.ipver == 4) {
		struct lpm_v4 k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, p.src, 4);
		slot = bpf_map_lookup_elem(&src_v4, &k);
	} else {
		struct lpm_v6 k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, p.src, 16);
		slot = bpf_map_lookup_elem(&src_v6, &k);
	}
	if (slot)
		return drop(*slot, bytes);

	active = bpf_map_lookup_elem(&meta, &zero);
	if (!active)
		return XDP_PASS;
	set = bpf_map_lookup_elem(&rules, active);
	if (!set)
		return XDP_PASS;
	n = set->count;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < MAX_RULES; i++) {
		if (i >= n)
			break;
		if (rule_matches(&set->r[i], &p))
			return drop(set->r[i].slot, bytes);
	}
	return XDP_PASS;
}

/* Only non-GPL helpers are used (map lookups), so the crate licence applies. */
char _license[] SEC("license") = "Apache-2.0";
