"""Beyond one GPU and one terminal (issue 10).

- ``accelerate_config``: DDP / FSDP / DeepSpeed ZeRO-3 config chosen from the plan, and the launch command.
- ``launch``: ``distributed_train`` runs N ranks of ``ftwiz train`` under ``accelerate launch``, one run name.
- ``vllm``: a sized ``vllm serve`` command and a merged 16-bit folder with its serve script.
(Shell completion lives in ``ftwiz.core.cli.completion``, the systemd user service in
``ftwiz.core.deploy.service``; desktop entry and containers in packaging/.)
"""
