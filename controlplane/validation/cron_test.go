package validation

import "testing"

func TestCheckCronSchedule(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string
	}{
		{spec: "*/5 * * * *"},
		{spec: "0 0 1 1 *"},
		{spec: "30 2 * * mon-fri"},
		{spec: "0 9-17/2 * JAN,jul SUN"},
		{spec: "15 3 ? * 0"},
		{spec: "5/15 * * * *"},
		{spec: "@daily"},
		{spec: "@every 1h30m"},
		{spec: "CRON_TZ=UTC 0 6 * * *"},
		{spec: "", wantErr: "empty spec string"},
		{spec: "* * *", wantErr: "expected exactly 5 fields, found 3: [* * *]"},
		{spec: "* * * * * *", wantErr: "expected exactly 5 fields, found 6: [* * * * * *]"},
		{spec: "60 * * * *", wantErr: "end of range (60) above maximum (59): 60"},
		{spec: "* * 0 * *", wantErr: "beginning of range (0) below minimum (1): 0"},
		{spec: "* * * * 7", wantErr: "end of range (7) above maximum (6): 7"},
		{spec: "5-1 * * * *", wantErr: "beginning of range (5) beyond end of range (1): 5-1"},
		{spec: "*/0 * * * *", wantErr: "step of range should be a positive number: */0"},
		{spec: "1-2-3 * * * *", wantErr: "too many hyphens: 1-2-3"},
		{spec: "*/2/3 * * * *", wantErr: "too many slashes: */2/3"},
		{spec: "x * * * *", wantErr: `failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax`},
		{spec: "@fortnightly", wantErr: "unrecognized descriptor: @fortnightly"},
		{spec: "@every soon", wantErr: `failed to parse duration @every soon: time: invalid duration "soon"`},
		{spec: "TZ=Nowhere/City 0 * * * *", wantErr: "provided bad location Nowhere/City: unknown time zone Nowhere/City"},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			err := checkCronSchedule(tc.spec)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("checkCronSchedule(%q) = %v, want nil", tc.spec, err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Errorf("checkCronSchedule(%q) = %v, want %q", tc.spec, err, tc.wantErr)
			}
		})
	}
}
