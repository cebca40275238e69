// Package layers holds the test that keeps Weft's package layering: a
// package may import packages of its own layer or below, never above (a
// wire contract never imports the agent, the store layer never imports
// the datapath, and so on). docs/architecture.md draws the same layers.
package layers
