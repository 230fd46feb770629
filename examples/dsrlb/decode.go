package main

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigError is a configuration error located in its file: every message
// reads "file:line: field.path: what is wrong", so an operator can jump to
// the line and knows which field is meant even in a long list of services.
type ConfigError struct {
	// File is the configuration file's name as given to the daemon.
	File string
	// Line is the 1-based line of the field (or of the nearest enclosing
	// field that exists in the file); zero when no line applies.
	Line int
	// Field is the path of the field, such as "services[0].backends[1].addr";
	// empty for errors about the file as a whole.
	Field string
	// Err is what is wrong. It keeps the library's error chain, so
	// errors.Is matches sentinels such as health.ErrUnsupportedTarget.
	Err error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// decoder fills the configuration structs from a YAML node tree, field by
// field, so that every error knows its line and its field path (the YAML
// library's own decoder reports Go type names and no path).
type decoder struct {
	file string
}

func (d *decoder) errf(n *yaml.Node, field, format string, args ...any) error {
	return &ConfigError{File: d.file, Line: n.Line, Field: field, Err: fmt.Errorf(format, args...)}
}

var durationType = reflect.TypeFor[Duration]()

// decode stores node n into v (addressable); path names v in errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "key:" or "key: ~" keeps the default
	}
	if v.Type() == durationType {
		return d.duration(n, v, path)
	}
	switch v.Kind() {
	case reflect.Pointer:
		// An optional field or section: present in the file, so set.
		p := reflect.New(v.Type().Elem())
		if err := d.decode(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		return d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errf(n, path, "want a list (lines starting with \"- \" or [a, b]), got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, path, "want a single value, got %s", kindName(n))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			return d.errf(n, path, "want true or false, got %q", n.Value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			if k := v.Kind(); k == reflect.Int || k == reflect.Int64 {
				return d.errf(n, path, "want a whole number, got %q", n.Value)
			}
			lo, hi := intRange(v.Type())
			return d.errf(n, path, "want a whole number from %d to %d, got %q", lo, hi, n.Value)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if n.Tag != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			return d.errf(n, path, "want a whole number from 0 to %d, got %q", uint64(math.MaxUint64)>>(64-v.Type().Bits()), n.Value)
		}
		v.SetUint(u)
	default:
		return d.errf(n, path, "cannot hold a value of kind %s", v.Kind())
	}
	return nil
}

func intRange(t reflect.Type) (lo, hi int64) {
	bits := t.Bits()
	return -1 << (bits - 1), 1<<(bits-1) - 1
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, path, "want a duration like 10s or 1m30s, got %s", kindName(n))
	}
	dur, err := parseDuration(n.Value)
	if err != nil {
		return &ConfigError{File: d.file, Line: n.Line, Field: path, Err: err}
	}
	v.Set(reflect.ValueOf(dur))
	return nil
}

// mapping decodes a YAML mapping into the struct v, refusing unknown and
// repeated keys. Merge keys ("<<: *anchor") are followed.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, path, "want a mapping (key: value lines), got %s", kindName(n))
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			if err := d.merge(val, v, path); err != nil {
				return err
			}
			continue
		}
		field := joinPath(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			return &ConfigError{File: d.file, Line: k.Line, Field: field, Err: unknownKey(k.Value, fields)}
		}
		if first, dup := seen[k.Value]; dup {
			return d.errf(k, field, "set twice (first on line %d)", first)
		}
		seen[k.Value] = k.Line
		if err := d.decode(val, v.Field(idx), field); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.SequenceNode {
		for _, m := range n.Content {
			if err := d.merge(m, v, path); err != nil {
				return err
			}
		}
		return nil
	}
	return d.mapping(n, v, path)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing usable"
}

// yamlFields maps the yaml tag names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = i
		}
	}
	return out
}

// unknownKey says that key is not valid here, suggesting the closest valid
// key when the difference looks like a typo, else listing them all.
func unknownKey(key string, fields map[string]int) error {
	valid := make([]string, 0, len(fields))
	for k := range fields {
		valid = append(valid, k)
	}
	slices.Sort(valid)
	if s := closest(key, valid); s != "" {
		return fmt.Errorf("unknown key; did you mean %s?", s)
	}
	return fmt.Errorf("unknown key; valid keys here: %s", strings.Join(valid, ", "))
}

// closest returns the candidate nearest to s by edit distance (case and
// '-' versus '_' ignored), or "" when none is near enough to be a typo: at
// most a third of the word's length, and at least one edit allowed.
func closest(s string, candidates []string) string {
	norm := func(x string) string { return strings.ReplaceAll(strings.ToLower(x), "-", "_") }
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		if d := editDistance(norm(s), norm(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, len(s)/3) {
		return best
	}
	return ""
}

// editDistance is the edit distance between a and b (bytes): insertions,
// deletions, substitutions and transpositions of neighbours ("tpc" for
// "tcp") each cost one (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// oneOf checks an enumerated value, suggesting the closest valid one.
func oneOf(value string, valid ...string) error {
	if slices.Contains(valid, value) {
		return nil
	}
	list := strings.Join(valid[:len(valid)-1], ", ") + " or " + valid[len(valid)-1]
	if s := closest(value, valid); s != "" {
		return fmt.Errorf("%q: want %s; did you mean %s?", value, list, s)
	}
	return fmt.Errorf("%q: want %s", value, list)
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns the YAML parser's error into a ConfigError with the
// line, the field being written there (found by parsing the text up to that
// line), and the offending line itself.
func syntaxError(file string, data []byte, err error) error {
	m := yamlLineErr.FindStringSubmatch(err.Error())
	if m == nil {
		return &ConfigError{File: file, Err: fmt.Errorf("syntax error: %s", strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	line, _ := strconv.Atoi(m[1])
	lines := strings.Split(string(data), "\n")
	if strings.Contains(m[2], "tab") {
		// The parser reports a tab in the indentation on the line before
		// it; point at the tab itself.
		for i := max(line-1, 0); i < len(lines); i++ {
			indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))]
			if strings.Contains(indent, "\t") {
				line = i + 1
				m[2] += " (indent with spaces, not tabs)"
				break
			}
		}
	}
	msg := "syntax error: " + m[2]
	if line >= 1 && line <= len(lines) {
		if text := strings.TrimSpace(lines[line-1]); text != "" {
			msg += fmt.Sprintf(" (the line reads %q)", text)
		}
	}
	return &ConfigError{File: file, Line: line, Field: fieldNear(lines, line), Err: errors.New(msg)}
}

var keyLineRe = regexp.MustCompile(`^(\s*(?:- )?)([A-Za-z0-9_-]+):`)

// fieldNear guesses the field path written on line (1-based) of a file that
// does not parse: the lines before it, plus the key of that line with its
// value left out, usually do parse. Empty when no guess holds.
func fieldNear(lines []string, line int) string {
	if line < 1 || line > len(lines) {
		return ""
	}
	prefix := strings.Join(lines[:line-1], "\n")
	if m := keyLineRe.FindStringSubmatch(lines[line-1]); m != nil {
		var root yaml.Node
		if yaml.Unmarshal([]byte(prefix+"\n"+m[1]+m[2]+": ~\n"), &root) == nil {
			if p, at := pathAt(&root, line); at == line {
				return p
			}
		}
	}
	var root yaml.Node
	if yaml.Unmarshal([]byte(prefix), &root) != nil {
		return ""
	}
	if p, at := pathAt(&root, line); p != "" {
		return "after " + p + fmt.Sprintf(" (line %d)", at)
	}
	return ""
}

// pathAt returns the path of the last key on or before line, and its line.
func pathAt(root *yaml.Node, line int) (string, int) {
	bestPath, bestLine := "", 0
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := joinPath(path, k.Value)
				if k.Line <= line && k.Line >= bestLine {
					bestPath, bestLine = p, k.Line
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root, "")
	return bestPath, bestLine
}
