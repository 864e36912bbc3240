"""Evaluation protocols on frozen (or fine-tuned) checkpoints: pure library code.

Label propagation (``label_propagation``, ``label_prop_config``, ``windowed_propagation``,
``dense_setup``) scored on DAVIS (``davis_metrics``), JHMDB (``pose``) and VIP (``parts``), with
one stage factory for the latter two (``propagation_stage``); frozen-feature probes (``probes``,
``probe_data``, ``probe_stage``) and VOC07 SVMs (``svm``); fine-tuning (``finetune``,
``finetune_recipe``); SiamFC tracking (``tracking``, ``otb``, ``siamfc_train``,
``siamfc_head_fit``, ``tracking_checkpoint``); dense features (``features``) and the evaluation
dataset specs (``eval_datasets``).
"""
