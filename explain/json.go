package explain

import "fmt"

// MarshalText writes the severity by name ("Info", "Warning", "Error"), so
// a Report's JSON form reads the same as its text form.
func (s Severity) MarshalText() ([]byte, error) {
	switch s {
	case Info, Warning, Error:
		return []byte(s.String()), nil
	}
	return nil, fmt.Errorf("explain: unknown severity %d", int(s))
}

// UnmarshalText reads a severity written by MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "Info":
		*s = Info
	case "Warning":
		*s = Warning
	case "Error":
		*s = Error
	default:
		return fmt.Errorf("explain: unknown severity %q (want Info, Warning or Error)", b)
	}
	return nil
}
