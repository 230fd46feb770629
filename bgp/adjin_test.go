package bgp

import (
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// adjInOf lists what srv received from peer (its Adj-RIB-In, also routes
// the import policy rejected).
func adjInOf(srv *server.BgpServer, peer string) []string {
	var out []string
	_ = srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: peer,
		Family: gobgp.RF_IPv4_UC, EnableFiltered: true}, func(n gobgp.NLRI, _ []*apiutil.Path) {
		out = append(out, n.String())
	})
	return out
}
