package dsr

// syncARP gives the ARP speaker the current VIPs and backends. Called with
// b.mu held.
func (b *Balancer) syncARP() {}
