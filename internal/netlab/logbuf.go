package netlab

import "sync"

// syncBuffer is a bounded, goroutine-safe log sink for child processes: a
// chatty child must not grow the test's memory without limit.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const maxLogBytes = 1 << 20

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - maxLogBytes; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
