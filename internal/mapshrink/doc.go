// Package mapshrink gives back the memory of Go maps that have emptied.
//
// A Go map keeps the table of the largest size it ever had: deleting
// entries frees what they point to, not their slots. Maps of per-endpoint
// or per-address state in the agent grow with the pods of a node and must
// shrink again when the pods go (issue 17, goal 6). It depends on nothing
// but the standard library.
package mapshrink
