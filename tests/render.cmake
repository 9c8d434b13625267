# attrib render and attrib report (docs/pictures.md): every command of the
# page runs against the quick-start results, the README's compare_methods
# results, an influence results file and a two-point sweep made from the
# quick-start results; tests/check_render.py decodes each PNG itself and
# checks it pixel by pixel against the results and the dataset (inputs,
# overlay colours recomputed, proponent and opponent tiles), and each
# report's links and numbers. Then headless Chromium screenshots two
# reports (skipped, 77, without chromium). Bad inputs: rows render_* and
# report_* of tests/bad_inputs.table (e2e_bad_inputs).
set(RENDER_DIR ${E2E}/render)
add_test(NAME render_doc_commands COMMAND bash ${ATTRIB_SRC_DIR}/tests/check_pictures.sh
  $<TARGET_FILE:attrib> ${ATTRIB_SRC_DIR} ${RENDER_DIR} ${E2E}/fmnist.h5 ${E2E}/quickstart.h5
  ${E2E}/compare_methods.h5 ${INFL}/infl_mlp_np1.h5)
set_tests_properties(render_doc_commands PROPERTIES LABELS "e2e;render" TIMEOUT 120
  FIXTURES_REQUIRED "fmnist;quickstart;compare_methods;infl_mlp_np1" FIXTURES_SETUP render_doc)

add_test(NAME render_report_chromium COMMAND bash ${ATTRIB_SRC_DIR}/tests/check_pictures.sh
  $<TARGET_FILE:attrib> ${ATTRIB_SRC_DIR} ${RENDER_DIR} ${E2E}/fmnist.h5 ${E2E}/quickstart.h5
  ${E2E}/compare_methods.h5 ${INFL}/infl_mlp_np1.h5 chromium)
set_tests_properties(render_report_chromium PROPERTIES LABELS "e2e;render;nosan" TIMEOUT 120
  FIXTURES_REQUIRED render_doc SKIP_RETURN_CODE 77)
