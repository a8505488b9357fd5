// Package regional keeps one AWS SDK client per region, made on first use,
// for the parts of the tagger that follow keys into their own regions.
package regional

import "sync"

// Clients holds one client of type C per region. It is safe for concurrent
// use.
type Clients[C any] struct {
	newClient func(region string) C
	mu        sync.Mutex
	clients   map[string]C
}

// New returns an empty set whose clients newClient makes, once per region.
func New[C any](newClient func(region string) C) *Clients[C] {
	return &Clients[C]{newClient: newClient, clients: make(map[string]C)}
}

// Get returns the client of region, making it on first use.
func (c *Clients[C]) Get(region string) C {
	c.mu.Lock()
	defer c.mu.Unlock()
	client, ok := c.clients[region]
	if !ok {
		client = c.newClient(region)
		c.clients[region] = client
	}
	return client
}
