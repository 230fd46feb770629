package dsrlb_test

// Conventions of the public API that no single package's tests can see:
// names shared across packages, and examples a user can copy.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/dsr/realserver"
	"github.com/dsrlb/dsrlb/health"
)

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Drop reasons are documented as metric labels: one convention, snake_case,
// in every package that counts drops.
func TestDropReasonLabelsSnakeCase(t *testing.T) {
	var labels []string
	for _, r := range dsr.DropReasons() {
		labels = append(labels, "dsr:"+r.String())
	}
	for r := arp.DropReason(1); !strings.HasPrefix(r.String(), "DropReason("); r++ {
		labels = append(labels, "arp:"+r.String())
	}
	require.Greater(t, len(labels), len(dsr.DropReasons())+10, "both packages' reasons are listed")
	for _, l := range labels {
		_, name, _ := strings.Cut(l, ":")
		assert.Regexp(t, snakeCase, name, "%s is not snake_case", l)
	}
}

// The same things have the same names: the time of an event is At, the
// injected logger is Logger.
func TestFieldNamesAgree(t *testing.T) {
	timeType := reflect.TypeFor[time.Time]()
	loggerType := reflect.TypeFor[*slog.Logger]()
	tests := []struct {
		typ     reflect.Type
		field   string
		of      reflect.Type
		notUsed []string
	}{
		{reflect.TypeFor[dsr.Event](), "At", timeType, []string{"Time"}},
		{reflect.TypeFor[arp.Event](), "At", timeType, []string{"Time"}},
		{reflect.TypeFor[health.Event](), "At", timeType, []string{"Time"}},
		{reflect.TypeFor[dsr.Config](), "Logger", loggerType, []string{"Log"}},
		{reflect.TypeFor[arp.Config](), "Logger", loggerType, []string{"Log"}},
		{reflect.TypeFor[health.MonitorConfig](), "Logger", loggerType, []string{"Log"}},
		{reflect.TypeFor[realserver.Config](), "Logger", loggerType, []string{"Log"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			f, ok := tt.typ.FieldByName(tt.field)
			require.True(t, ok, "%s has no field %s", tt.typ, tt.field)
			assert.Equal(t, tt.of, f.Type)
			for _, n := range tt.notUsed {
				_, ok := tt.typ.FieldByName(n)
				assert.False(t, ok, "%s has a field %s beside %s", tt.typ, n, tt.field)
			}
		})
	}
}

// Examples are documentation a user copies: in a public package they may
// import only public packages. (Examples of internal packages are for the
// module's own developers.)
func TestExamplesImportOnlyPublicPackages(t *testing.T) {
	const module = "github.com/dsrlb/dsrlb"
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (name == "internal" || name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if !hasExample(f) {
			return nil
		}
		checked++
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			if p == module+"/internal" || strings.HasPrefix(p, module+"/internal/") {
				t.Errorf("%s: an example file imports %s; users cannot import internal packages", fset.Position(imp.Pos()), p)
			}
		}
		return nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, checked, 6, "the example files of dsr, dsrtest, arp, health, scheduler and realserver were found")
}

// hasExample reports whether f declares an Example function.
func hasExample(f *ast.File) bool {
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
			return true
		}
	}
	return false
}
