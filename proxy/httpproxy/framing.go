package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/weftnet/weft/policy"
)

// errHeaderTooLarge: the header block did not end within the limit.
var errHeaderTooLarge = errors.New("request header larger than the limit")

// peekHeader returns the request's header block (request line to the
// blank line) without consuming it; br must buffer at least limit bytes.
func peekHeader(br *bufio.Reader, limit int) ([]byte, error) {
	searched := 0
	for n := 1; ; {
		b, err := br.Peek(n)
		if i := headerEnd(b, searched); i >= 0 {
			return b[:i], nil
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errHeaderTooLarge
			}
			return nil, err
		}
		if len(b) >= limit {
			return nil, errHeaderTooLarge
		}
		searched = max(0, len(b)-3)
		n = min(limit, max(len(b)+1, br.Buffered()))
	}
}

// headerEnd is the index just past the blank line ending the header
// block in b (CRLF CRLF, or bare LF LF as net/http accepts), searching
// from from; -1 when b holds no end yet.
func headerEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return -1
}

// checkFraming refuses header blocks whose message framing is ambiguous,
// the shapes request smuggling relies on: both Content-Length and
// Transfer-Encoding, several of either, a coding other than chunked,
// and obsolete line folding.
func checkFraming(hdr []byte) error {
	lines := bytes.Split(hdr, []byte("\n"))
	var cl, te int
	for _, line := range lines[1:] {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errors.New("obsolete line folding in the header")
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // net/http refuses it
		}
		// net/http lets a trailing space through, which other servers
		// read differently.
		if !policy.ValidHeaderName(string(name)) {
			return fmt.Errorf("header name %q: accepted are letters, digits and !#$%%&'*+-.^_`|~", name)
		}
		switch strings.ToLower(string(name)) {
		case "content-length":
			cl++
		case "transfer-encoding":
			te++
			if v := strings.TrimSpace(string(value)); !strings.EqualFold(v, "chunked") {
				return fmt.Errorf("transfer coding %q: accepted is chunked", v)
			}
		}
	}
	switch {
	case cl > 0 && te > 0:
		return errors.New("both Content-Length and Transfer-Encoding")
	case cl > 1:
		return errors.New("several Content-Length headers")
	case te > 1:
		return errors.New("several Transfer-Encoding headers")
	}
	return nil
}

// bufferChunked reads a chunked body whole, so that bad chunking is found
// before anything is forwarded; errBodyTooLarge above limit.
func bufferChunked(req *http.Request, limit int64) error {
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read chunked body: %w", err)
	}
	if int64(len(b)) > limit {
		return errBodyTooLarge
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.ContentLength = int64(len(b))
	req.TransferEncoding = nil
	return nil
}

var errBodyTooLarge = errors.New("chunked request body larger than the limit")

// Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business on
// each side and are not forwarded.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}
