"""`rft-trl demo`: a competent tiny base, SHAD, SFT vs RFT on the synthetic agent corpus, and an HTML report.

Modules:
    base_model  the hub-free pretrained tiny base (pretraining + disk cache)
    metrics     label quality against ground truth, held-out group losses
    pipeline    corpus -> base -> SHAD -> SFT and RFT -> evaluation -> metrics.json
    report      the standalone report.html
"""
