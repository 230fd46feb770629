package afpacket

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBatchCallsAreRaw guards the choice explained above doRead: the batch
// system calls must not tell the Go scheduler they may block, or large
// frames pay thread hand-offs per batch again. A behavioural test would
// need a loaded, quiet machine to see it; the source says it exactly.
func TestBatchCallsAreRaw(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "afpacket_linux.go", nil, 0)
	require.NoError(t, err)
	calls := map[string]string{} // system call number → function used
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		fn, ok1 := call.Fun.(*ast.SelectorExpr)
		nr, ok2 := call.Args[0].(*ast.SelectorExpr)
		if ok1 && ok2 && (nr.Sel.Name == "SYS_RECVMMSG" || nr.Sel.Name == "SYS_SENDMMSG") {
			calls[nr.Sel.Name] = fn.Sel.Name
		}
		return true
	})
	assert.Equal(t, map[string]string{"SYS_RECVMMSG": "RawSyscall6", "SYS_SENDMMSG": "RawSyscall6"}, calls)
}
