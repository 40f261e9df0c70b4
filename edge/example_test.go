package edge_test

import (
	"fmt"

	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
)

// The deny-list keys of a session token: its wmid, its subject and its
// token id each name it, as a kind and a hash (any subject fits, none is
// stored in clear). The legacy keys of earlier releases are checked too.
func ExampleRevocationKeys() {
	wmid := uint64(7)
	c := &delivery.Claims{WMID: &wmid, Subject: "dave@example.com:tv", ID: []byte("0123456789abcdef")}
	for _, k := range edge.RevocationKeys(c) {
		fmt.Println(k)
	}
	fmt.Println(edge.SubjectRevocationKey("dave@example.com:tv") == edge.RevocationKeys(c)[1])
	// Output:
	// wmid.7902699be42c8a8e46fbbb4501726517
	// sub.d257fea0e2562bdedd7201e3410508cf
	// cti.9f9f5111f7b27a781f1f1ddde5ebc2dd
	// wmid-7
	// sub-dave@example.com:tv
	// true
}
