package dicomweb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Attrs is one DICOM JSON object (PS3.18 F.2): tag "GGGGEEEE" -> {vr, Value}.
type Attrs map[string]struct {
	VR    string            `json:"vr"`
	Value []json.RawMessage `json:"Value"`
}

// Str returns the first value of tag as text (person names: the alphabetic form).
func (a Attrs) Str(tag string) string {
	e, ok := a[tag]
	if !ok || len(e.Value) == 0 {
		return ""
	}
	raw := e.Value[0]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var pn struct {
		Alphabetic string `json:"Alphabetic"`
	}
	if json.Unmarshal(raw, &pn) == nil && pn.Alphabetic != "" {
		return pn.Alphabetic
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return ""
}

// Strs returns every value of tag as text.
func (a Attrs) Strs(tag string) []string {
	e := a[tag]
	var out []string
	for _, raw := range e.Value {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, s)
		}
	}
	return out
}

// Int returns the first value of tag as an integer (0 when absent).
func (a Attrs) Int(tag string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(a.Str(tag)))
	return n
}

// Study is one QIDO-RS study match.
type Study struct {
	UID         string   `json:"study_uid"`
	PatientName string   `json:"patient_name"`
	PatientID   string   `json:"patient_id"`
	Date        string   `json:"date"`
	Description string   `json:"description"`
	Accession   string   `json:"accession"`
	Modalities  []string `json:"modalities"`
	Series      int      `json:"series"`
	Instances   int      `json:"instances"`
}

// Series is one QIDO-RS series match.
type Series struct {
	StudyUID    string `json:"study_uid"`
	UID         string `json:"series_uid"`
	Number      int    `json:"number"`
	Modality    string `json:"modality"`
	Description string `json:"description"`
	Instances   int    `json:"instances"`
}

// Filter narrows a study search; empty fields match everything. Name and ID accept
// DICOM wildcards (* and ?); Date is YYYYMMDD or a range YYYYMMDD-YYYYMMDD.
type Filter struct {
	PatientName, PatientID, Date, Modality, Accession string
	Limit                                             int
}

func (f Filter) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("PatientName", f.PatientName)
	set("PatientID", f.PatientID)
	set("StudyDate", f.Date)
	set("ModalitiesInStudy", f.Modality)
	set("AccessionNumber", f.Accession)
	if f.PatientName != "" && strings.ContainsAny(f.PatientName, "*?") {
		q.Set("fuzzymatching", "false")
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	// Ask for what the result lists show, not only the required return keys.
	q["includefield"] = []string{"00081030", "00080061", "00201206", "00201208", "00100010", "00100020", "00080050", "00080020"}
	return q
}

const jsonAccept = "application/dicom+json, application/json"

// search runs one QIDO-RS query and decodes the DICOM JSON answer (204 = none).
func (c *Client) search(ctx context.Context, op, path string, q url.Values) ([]Attrs, error) {
	resp, err := c.get(ctx, op, path, q, jsonAccept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", op, c.Root+path, err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil
	}
	var out []Attrs
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %s: the answer is not DICOM JSON: %w", op, c.Root+path, err)
	}
	return out, nil
}

// SearchStudies lists the studies matching f.
func (c *Client) SearchStudies(ctx context.Context, f Filter) ([]Study, error) {
	res, err := c.search(ctx, "search studies", "/studies", f.query())
	if err != nil {
		return nil, err
	}
	out := make([]Study, 0, len(res))
	for _, a := range res {
		out = append(out, Study{UID: a.Str("0020000D"), PatientName: a.Str("00100010"), PatientID: a.Str("00100020"),
			Date: a.Str("00080020"), Description: a.Str("00081030"), Accession: a.Str("00080050"),
			Modalities: a.Strs("00080061"), Series: a.Int("00201206"), Instances: a.Int("00201208")})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Date > out[j].Date })
	return out, nil
}

// SearchSeries lists the series of a study.
func (c *Client) SearchSeries(ctx context.Context, study string) ([]Series, error) {
	q := url.Values{"includefield": {"0008103E", "00201209", "00200011", "00080060"}}
	res, err := c.search(ctx, "search series", "/studies/"+url.PathEscape(study)+"/series", q)
	if err != nil {
		return nil, err
	}
	out := make([]Series, 0, len(res))
	for _, a := range res {
		out = append(out, Series{StudyUID: study, UID: a.Str("0020000E"), Number: a.Int("00200011"), Modality: a.Str("00080060"),
			Description: a.Str("0008103E"), Instances: a.Int("00201209")})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// SearchInstances lists the SOP Instance UIDs of a series.
func (c *Client) SearchInstances(ctx context.Context, study, series string) ([]string, error) {
	res, err := c.search(ctx, "list instances", "/studies/"+url.PathEscape(study)+"/series/"+url.PathEscape(series)+"/instances", nil)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range res {
		if u := a.Str("00080018"); u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out, nil
}
