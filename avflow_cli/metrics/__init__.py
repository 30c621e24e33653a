"""The paper's metrics (AV-Flow §4, Tables 1-3), each a plain numpy function with its definition.

| metric | module | function |
|---|---|---|
| F1 lips / F1 smiles | :mod:`.lipsync` (+ :mod:`.face_decoder`) | ``f1_lips``, ``f1_smiles`` |
| FD_e | :mod:`.frechet` | ``fd_e``, ``frechet_distance`` |
| Div_e / Div_h | :mod:`.diversity` | ``div_e``, ``div_h`` |
| BC_e / BC_h | :mod:`.beat` | ``bc_e``, ``bc_h``, ``beat_align_score`` |
| MCD | :mod:`.mcd` | ``mcd_dtw`` |
| WER | :mod:`.wer` | ``wer``, ``transcribe`` |
| speed | :mod:`.speed` | ``measure_speed`` |

Import the submodules directly; this package imports nothing heavy at load time.
"""
