package smc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// TraceHeader is the column list of WriteTraceCSV.
// The last columns are the run's cumulative work (Info.Cost).
var TraceHeader = []string{"step", "t", "lambda", "ess", "resampled", "rhat_mean", "rhat_max", "logw_spread", "unique", "dead", "log_z",
	"denoiser_rows", "grad_rows", "reward_evals", "proposal_rows"}

// traceRow formats one Info as CSV fields.
func traceRow(in Info) []string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }
	r := "0"
	if in.Resampled {
		r = "1"
	}
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	c := in.Cost
	return []string{strconv.Itoa(in.Step), f(in.T), f(in.Lambda), f(in.ESS), r, f(in.RhatMean), f(in.RhatMax),
		f(in.LogWSpread), strconv.Itoa(in.Unique), strconv.Itoa(in.Dead), f(in.LogZ),
		i(c.DenoiserRows), i(c.GradRows), i(c.RewardEvals), i(c.ProposalRows)}
}

// WriteTraceCSV writes the per-step trace as CSV with TraceHeader,
// atomically (a temporary file renamed into place).
func WriteTraceCSV(path string, trace []Info) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		if _, err := fmt.Fprintln(w, join(TraceHeader)); err != nil {
			return err
		}
		for _, in := range trace {
			if _, err := fmt.Fprintln(w, join(traceRow(in))); err != nil {
				return err
			}
		}
		return nil
	})
}

func join(f []string) string {
	s := ""
	for i, x := range f {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

// WriteTraceJSONL writes the per-step trace as JSON Lines, atomically.
// Non-finite numbers (e.g. a −Inf maximum reward) are written as null.
func WriteTraceJSONL(path string, trace []Info) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		for _, in := range trace {
			row := map[string]any{
				"step": in.Step, "t": num(in.T), "lambda": num(in.Lambda), "ess": num(in.ESS),
				"resampled": in.Resampled, "rhat_mean": num(in.RhatMean), "rhat_max": num(in.RhatMax),
				"logw_spread": num(in.LogWSpread), "unique": in.Unique, "dead": in.Dead, "log_z": num(in.LogZ),
				"denoiser_rows": in.Cost.DenoiserRows, "grad_rows": in.Cost.GradRows, "reward_evals": in.Cost.RewardEvals,
				"proposal_rows": in.Cost.ProposalRows,
			}
			if err := enc.Encode(row); err != nil {
				return err
			}
		}
		return nil
	})
}

// num maps non-finite values to nil (JSON null).
func num(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}
