"""Open the results file written by test_h5results (2 ranks) with xarray and
check that every variable has named dimensions and the right values.

Usage: /usr/bin/python3 check_results_xarray.py test_h5results_np2.h5

Dimension scales live at the file root (/sample, /feature, /class, ...).
Opening a group gives named dimensions (netCDF-4 dimensions are visible in
child groups) but no coordinate values; take those from the root dataset.
"""
import sys
import warnings

import numpy as np
import xarray as xr

warnings.simplefilter("ignore")

N, F, C = 1000, 20, 10
failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def dims_of(ds):
    return {k: v.dims for k, v in ds.variables.items()}


def main(path):
    rows = np.arange(N)
    for engine in ("h5netcdf", "netcdf4"):
        root = xr.open_dataset(path, engine=engine)
        d = dims_of(root)
        expect(d.get("logits") == ("sample", "class"), f"{engine} /logits dims {d.get('logits')}")
        expect(d.get("sample") == ("sample",), f"{engine} /sample is a coordinate")
        expect(np.array_equal(root["sample"].values, 5000 + rows), f"{engine} /sample values")
        expect(np.array_equal(root["logits"].values,
                              (rows[:, None] * 0.25 - np.arange(C)[None, :]).astype(np.float32)),
               f"{engine} /logits values")
        expect(root.attrs.get("format") == "attrib-results", f"{engine} root attr format")
        expect(isinstance(root.attrs.get("format"), str), f"{engine} string attrs are str")
        expect(int(root.attrs.get("n_ranks", -1)) == 2, f"{engine} root attr n_ranks")

        ig = xr.open_dataset(path, engine=engine, group="attributions/ig")
        d = dims_of(ig)
        expect(d.get("values") == ("sample", "feature"), f"{engine} ig/values dims {d.get('values')}")
        expect(d.get("delta") == ("sample",), f"{engine} ig/delta dims {d.get('delta')}")
        expect(ig.attrs.get("method") == "integrated_gradients", f"{engine} ig attr method")
        expect(np.allclose(ig.attrs.get("quad_weights"), [0.25, 0.5, 0.25]),
               f"{engine} ig attr quad_weights")
        expect(ig["values"].attrs.get("description") == "integrated gradients",
               f"{engine} ig/values description")
        ig = ig.assign_coords(sample=root["sample"], feature=root["feature"])
        v = ig["values"].sel(sample=5003, feature=7)
        expect(float(v) == 3007.0, f"{engine} ig/values[sample=5003, feature=7] = {float(v)}")
        expect(np.array_equal(ig["values"].values,
                              (rows[:, None] * 1000 + np.arange(F)[None, :]).astype(np.float32)),
               f"{engine} ig/values values")
        expect(np.array_equal(ig["delta"].values, 0.5 * rows - 3.25), f"{engine} ig/delta values")

        pred = xr.open_dataset(path, engine=engine, group="predictions")
        expect(dims_of(pred).get("pred") == ("sample",), f"{engine} predictions/pred dims")
        expect(np.array_equal(pred["pred"].values, rows % C), f"{engine} predictions/pred values")

        empty = xr.open_dataset(path, engine=engine, group="empty")
        expect(empty["values"].dims == ("nothing", "feature") and empty["values"].shape == (0, F),
               f"{engine} empty/values {empty['values'].dims} {empty['values'].shape}")
        for ds in (root, ig, pred, empty):
            ds.close()
    if failures:
        print(f"check_results_xarray: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("check_results_xarray: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
