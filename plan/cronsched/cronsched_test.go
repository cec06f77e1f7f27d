package cronsched

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // tests load real zones without depending on the host's database

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

// at parses an RFC 3339 time for fixtures.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse fixture time %q: %v", s, err)
	}
	return v
}

func mustParse(t *testing.T, schedule string, tz *string) Schedule {
	t.Helper()
	s, err := Parse(schedule, tz, time.LoadLocation)
	if err != nil {
		t.Fatalf("Parse(%q): %v", schedule, err)
	}
	return s
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		tz       *string
		load     LoadLocation
		want     string // substring of the error
	}{
		{"empty", "", nil, nil, `parse schedule "": empty spec string`},
		{"too few fields", "* * * *", nil, nil, `parse schedule "* * * *": expected exactly 5 fields, found 4: [* * * *]`},
		{"seconds field", "0 * * * * *", nil, nil, "expected exactly 5 fields, found 6"},
		{"minute out of range", "60 * * * *", nil, nil, "end of range (60) above maximum (59): 60"},
		{"bad month name", "0 0 1 foo *", nil, nil, `failed to parse int from foo`},
		{"bad step", "*/0 * * * *", nil, nil, "step of range should be a positive number"},
		{"unknown descriptor", "@fortnightly", nil, nil, "unrecognized descriptor: @fortnightly"},
		{"bad every", "@every soon", nil, nil, "failed to parse duration @every soon"},
		{"TZ prefix", "TZ=Europe/Paris 0 * * * *", nil, nil, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"},
		{"CRON_TZ prefix", "CRON_TZ=UTC 0 * * * *", ptr("UTC"), nil, "cannot use TZ or CRON_TZ in schedule"},
		{"empty time zone", "0 * * * *", ptr(""), nil, `parse time zone "": timeZone must be nil or non-empty string`},
		{"Local", "0 * * * *", ptr("Local"), time.LoadLocation, "timeZone must be an explicit time zone"},
		{"path traversal", "0 * * * *", ptr("../etc/passwd"), time.LoadLocation, "unknown time zone ../etc/passwd"},
		{"leading dash", "0 * * * *", ptr("-x/y"), time.LoadLocation, "unknown time zone -x/y"},
		{"long element", "0 * * * *", ptr("America/Abcdefghijklmno"), time.LoadLocation, "unknown time zone"},
		{"unknown zone", "0 * * * *", ptr("Mars/Olympus"), time.LoadLocation, `parse time zone "Mars/Olympus": unknown time zone Mars/Olympus`},
		{"no database", "0 * * * *", ptr("Europe/Paris"), nil, "no time zone database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.schedule, tt.tz, tt.load)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.schedule, err, tt.want)
			}
		})
	}
	if _, err := Parse("0 * * * *", ptr("Europe/Paris"), nil); !errors.Is(err, ErrNoTimeZoneDatabase) {
		t.Errorf("error without loader = %v, want ErrNoTimeZoneDatabase", err)
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		schedule string
		tz       *string
		after    string
		want     string
	}{
		{"*/15 * * * *", nil, "2024-03-01T10:07:30Z", "2024-03-01T10:15:00Z"},
		{"0 * * * *", nil, "2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"},
		{"30 6-16/4 * * 1-5", nil, "2024-03-01T15:00:00Z", "2024-03-04T06:30:00Z"}, // Friday afternoon → Monday
		{"0 0 1 jan,jul ?", nil, "2024-03-01T00:00:00Z", "2024-07-01T00:00:00Z"},
		{"@hourly", nil, "2024-03-01T10:59:59Z", "2024-03-01T11:00:00Z"},
		{"@daily", nil, "2024-03-01T10:00:00Z", "2024-03-02T00:00:00Z"},
		{"@midnight", nil, "2024-03-01T10:00:00Z", "2024-03-02T00:00:00Z"},
		{"@weekly", nil, "2024-03-01T10:00:00Z", "2024-03-03T00:00:00Z"},
		{"@monthly", nil, "2024-03-01T10:00:00Z", "2024-04-01T00:00:00Z"},
		{"@yearly", nil, "2024-03-01T10:00:00Z", "2025-01-01T00:00:00Z"},
		{"@annually", nil, "2024-03-01T10:00:00Z", "2025-01-01T00:00:00Z"},
		{"@every 90m", nil, "2024-03-01T10:00:00Z", "2024-03-01T11:30:00Z"},
		{"@every 1h", ptr("Asia/Tokyo"), "2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"},
		// 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer.
		{"0 9 * * *", ptr("Europe/Paris"), "2024-03-01T10:00:00Z", "2024-03-02T08:00:00Z"},
		{"0 9 * * *", ptr("Europe/Paris"), "2024-07-01T10:00:00Z", "2024-07-02T07:00:00Z"},
		// Daylight saving starts on 2024-03-10 in New York: 02:30 does not
		// exist that day, the next 02:30 is on the 11th.
		{"30 2 * * *", ptr("America/New_York"), "2024-03-09T08:00:00Z", "2024-03-11T06:30:00Z"},
		{"0 12 * * *", ptr("UTC"), "2024-03-01T12:00:00Z", "2024-03-02T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			s := mustParse(t, tt.schedule, tt.tz)
			got := s.Next(at(t, tt.after))
			if want := at(t, tt.want); !got.Equal(want) {
				t.Errorf("Next(%s) = %s, want %s", tt.after, got.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}

// TestNextIgnoresLocalZone checks that a schedule without a time zone reads
// in UTC whatever the location of the time passed in (robfig/cron alone
// would read it in the time's own location).
func TestNextIgnoresLocalZone(t *testing.T) {
	s := mustParse(t, "0 9 * * *", nil)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Next(at(t, "2024-03-01T10:00:00Z").In(tokyo))
	if want := at(t, "2024-03-02T09:00:00Z"); !got.Equal(want) {
		t.Errorf("Next = %s, want %s", got.UTC(), want)
	}
	if s.Location() != time.UTC || s.TimeZone() != "" || s.String() != "0 9 * * *" {
		t.Errorf("Location, TimeZone, String = %v, %q, %q", s.Location(), s.TimeZone(), s.String())
	}
}

func TestMostRecent(t *testing.T) {
	created := "2024-03-01T10:00:00Z"
	tests := []struct {
		name     string
		schedule string
		last     string // "" for never scheduled
		now      string
		deadline *int64
		want     Due
		wantErr  string
	}{
		{
			name: "nothing due yet", schedule: "0 * * * *", now: "2024-03-01T10:30:00Z",
			want: Due{Earliest: at(t, created)},
		},
		{
			name: "one due", schedule: "0 * * * *", now: "2024-03-01T11:00:00Z",
			want: Due{Earliest: at(t, created), MostRecent: at(t, "2024-03-01T11:00:00Z"), Missed: 1},
		},
		{
			name: "one due, later in the interval", schedule: "0 * * * *", now: "2024-03-01T11:59:59Z",
			want: Due{Earliest: at(t, created), MostRecent: at(t, "2024-03-01T11:00:00Z"), Missed: 1},
		},
		{
			name: "several missed since last run", schedule: "0 * * * *", last: "2024-03-01T11:00:00Z", now: "2024-03-01T15:20:00Z",
			want: Due{Earliest: at(t, "2024-03-01T11:00:00Z"), MostRecent: at(t, "2024-03-01T15:00:00Z"), Missed: 4},
		},
		{
			name: "irregular schedule walks forward", schedule: "30 6-16/4 * * 1-5", last: "2024-03-01T14:30:00Z", now: "2024-03-05T11:00:00Z",
			want: Due{Earliest: at(t, "2024-03-01T14:30:00Z"), MostRecent: at(t, "2024-03-05T10:30:00Z"), Missed: 1 + int64((at(t, "2024-03-05T11:00:00Z").Sub(at(t, "2024-03-04T06:30:00Z")).Seconds())/(4*3600))},
		},
		{
			name: "exactly 100 missed is not too many", schedule: "* * * * *", last: "2024-03-01T10:00:00Z", now: "2024-03-01T11:40:00Z",
			want: Due{Earliest: at(t, "2024-03-01T10:00:00Z"), MostRecent: at(t, "2024-03-01T11:40:00Z"), Missed: 100},
		},
		{
			name: "101 missed is too many", schedule: "* * * * *", last: "2024-03-01T10:00:00Z", now: "2024-03-01T11:41:00Z",
			want: Due{Earliest: at(t, "2024-03-01T10:00:00Z"), MostRecent: at(t, "2024-03-01T11:41:00Z"), Missed: 101, TooMany: true},
		},
		{
			name: "years of missed runs stay cheap", schedule: "* * * * *", last: "2020-01-01T00:00:00Z", now: "2024-03-01T11:41:30Z",
			want: Due{Earliest: at(t, "2020-01-01T00:00:00Z"), MostRecent: at(t, "2024-03-01T11:41:00Z"), Missed: 2190941, TooMany: true},
		},
		{
			name: "starting deadline bounds the search", schedule: "* * * * *", last: "2024-03-01T10:00:00Z", now: "2024-03-01T11:41:30Z",
			deadline: ptr(int64(200)),
			want:     Due{Earliest: at(t, "2024-03-01T11:38:10Z"), MostRecent: at(t, "2024-03-01T11:41:00Z"), Missed: 3},
		},
		{
			name: "starting deadline earlier than last run is ignored", schedule: "0 * * * *", last: "2024-03-01T11:00:00Z", now: "2024-03-01T11:30:00Z",
			deadline: ptr(int64(3600)),
			want:     Due{Earliest: at(t, "2024-03-01T11:00:00Z")},
		},
		{
			name: "starting deadline passed: nothing due", schedule: "0 * * * *", last: "2024-03-01T10:00:00Z", now: "2024-03-01T11:30:00Z",
			deadline: ptr(int64(60)),
			want:     Due{Earliest: at(t, "2024-03-01T11:29:00Z")},
		},
		{
			name: "every", schedule: "@every 7m", last: "2024-03-01T10:00:00Z", now: "2024-03-01T10:30:00Z",
			want: Due{Earliest: at(t, "2024-03-01T10:00:00Z"), MostRecent: at(t, "2024-03-01T10:28:00Z"), Missed: 4},
		},
		{
			name: "never fires", schedule: "0 0 30 2 *", now: "2024-03-01T11:30:00Z",
			want: Due{Earliest: at(t, created)}, wantErr: "time difference between two schedules is less than 1 second",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.schedule, nil)
			var last time.Time
			if tt.last != "" {
				last = at(t, tt.last)
			}
			got, err := s.MostRecent(last, at(t, created), at(t, tt.now), tt.deadline)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("MostRecent (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMostRecentTimeZone checks the due time of a zoned schedule across the
// start of daylight saving time.
func TestMostRecentTimeZone(t *testing.T) {
	s := mustParse(t, "0 9 * * *", ptr("Europe/Paris"))
	due, err := s.MostRecent(at(t, "2024-03-30T08:00:00Z"), time.Time{}, at(t, "2024-03-31T07:30:00Z"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := at(t, "2024-03-31T07:00:00Z"); !due.MostRecent.Equal(want) || due.Missed != 1 {
		t.Errorf("MostRecent = %s (missed %d), want %s", due.MostRecent.UTC(), due.Missed, want)
	}
}

func TestZeroSchedule(t *testing.T) {
	var s Schedule
	if !s.Next(at(t, "2024-03-01T10:00:00Z")).IsZero() || s.Location() != time.UTC {
		t.Error("the zero Schedule should never fire and read in UTC")
	}
}

func BenchmarkMostRecentManyMissed(b *testing.B) {
	s, err := Parse("* * * * *", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	last := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2024, 3, 1, 11, 41, 30, 0, time.UTC)
	for b.Loop() {
		if _, err := s.MostRecent(last, time.Time{}, now, nil); err != nil {
			b.Fatal(err)
		}
	}
}
