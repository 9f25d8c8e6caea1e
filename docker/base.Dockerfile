# The image every lab service runs in: a Python base (a debootstrap'd Debian by default, or
# $CHAOSLAB_BASE_IMAGE), the services' wheels installed offline, and the chaoslab project.
# Built by harness/images.py with the classic builder; no registry is needed.
ARG BASE
FROM ${BASE}

ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# The wheelhouse (filled on the host by `pip download`), pip included: pip runs from its own
# wheel, so the base needs no pip of its own. This layer is cached while the wheels stay the same.
COPY wheels /tmp/wheels
RUN set -- /tmp/wheels/pip-*.whl \
 && python3 "$1/pip" install --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt \
 && rm -rf /tmp/wheels

# The project itself (a wheel built on the host), so services may import the harness's kit.
COPY dist /tmp/dist
RUN python3 -m pip install --no-index --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist

LABEL chaoslab.image=base
CMD ["python3"]
