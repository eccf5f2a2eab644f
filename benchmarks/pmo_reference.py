"""Published AUC top-10 figures for the PMO tasks (10,000 calls, mean over seeds).

- REINVENT and Graph GA: the PMO paper (Gao et al. 2022, NeurIPS, 5 seeds), as reproduced in the f-RAG paper's Table 1
  (which takes them from PMO) and in the InVirtuoGen repository's reference table (the two agree).
- GenMol: Lee et al. 2025 (arXiv 2501.06158), as reproduced in the InVirtuoGen repository's README and reference
  table (sum over the 23 PMO tasks 18.362); its standard deviations and seed count were not found.

PMO's isomer-based oracles (isomers, zaleplon, sitagliptin) were computed with a TDC version whose total-atom term
read the SMILES text (fixed in TDC 0.3.7); ours (benchmarks/pmo_tasks.py) follows GuacaMol's definition, so those
three tasks compare only loosely.
"""

PUBLISHED: dict[str, dict[str, float]] = {
    "qed": {"REINVENT": 0.941, "Graph GA": 0.940, "GenMol": 0.942},
    "osimertinib_mpo": {"REINVENT": 0.837, "Graph GA": 0.831, "GenMol": 0.876},
    "ranolazine_mpo": {"REINVENT": 0.760, "Graph GA": 0.728, "GenMol": 0.821},
    "perindopril_mpo": {"REINVENT": 0.537, "Graph GA": 0.538, "GenMol": 0.718},
    "sitagliptin_mpo": {"REINVENT": 0.021, "Graph GA": 0.433, "GenMol": 0.584},
    "zaleplon_mpo": {"REINVENT": 0.358, "Graph GA": 0.346, "GenMol": 0.584},
    "amlodipine_mpo": {"REINVENT": 0.635, "Graph GA": 0.661, "GenMol": 0.810},
    "isomers_c9h10n2o2pf2cl": {"REINVENT": 0.642, "Graph GA": 0.719, "GenMol": 0.833},
    "scaffold_hop": {"REINVENT": 0.560, "Graph GA": 0.517, "GenMol": 0.628},
    "deco_hop": {"REINVENT": 0.666, "Graph GA": 0.619, "GenMol": 0.960},
    "valsartan_smarts": {"REINVENT": 0.178, "Graph GA": 0.000, "GenMol": 0.822},
    "thiothixene_rediscovery": {"REINVENT": 0.534, "Graph GA": 0.479, "GenMol": 0.692},
    "troglitazone_rediscovery": {"REINVENT": 0.441, "Graph GA": 0.390, "GenMol": 0.867},
    "mestranol_similarity": {"REINVENT": 0.618, "Graph GA": 0.579, "GenMol": 0.982},
    "albuterol_similarity": {"REINVENT": 0.882, "Graph GA": 0.838, "GenMol": 0.937},
    "median2": {"REINVENT": 0.276, "Graph GA": 0.273, "GenMol": 0.359},
}
