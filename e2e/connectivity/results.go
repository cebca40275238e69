package connectivity

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"time"
)

// resultJSON is one scenario's result as `-o json` prints it, one object
// per line.
type resultJSON struct {
	Name       string  `json:"name"`
	Run        int     `json:"run"` // 1..--repeat
	Result     string  `json:"result"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
	Reason     string  `json:"reason,omitempty"` // why a test was skipped
}

// WriteJSON writes one JSON object per result (for jq).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // names hold "->"
	for _, res := range r.Results {
		out := resultJSON{Name: res.Name, Run: max(res.Run, 1), Result: "success",
			DurationMS: float64(res.Duration.Microseconds()) / 1000}
		switch {
		case res.Err != nil:
			out.Result, out.Error = "failure", res.Err.Error()
		case res.Skipped != "":
			out.Result, out.Reason = "skipped", res.Skipped
		}
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write results as JSON: %w", err)
		}
	}
	return nil
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the results as one JUnit test suite named suite, for
// CI systems that read JUnit XML.
func (r Report) WriteJUnit(w io.Writer, suite string) error {
	s := junitSuite{Name: suite, Tests: len(r.Results)}
	var total time.Duration
	for _, res := range r.Results {
		name := res.Name
		if res.Run > 1 {
			name = fmt.Sprintf("%s (run %d)", res.Name, res.Run)
		}
		c := junitCase{Name: name, Classname: suite, Time: seconds(res.Duration)}
		switch {
		case res.Err != nil:
			s.Failures++
			c.Failure = &junitFailure{Message: "scenario failed", Text: res.Err.Error()}
		case res.Skipped != "":
			s.Skipped++
			c.Skipped = &junitSkipped{Message: res.Skipped}
		}
		total += res.Duration
		s.Cases = append(s.Cases, c)
	}
	s.Time = seconds(total)
	doc := junitSuites{Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write results as JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
