"""The settings a training run records with its weights, taken back by eval, predict, export.

Each checkpoint's state.json holds the MODEL settings its weights were trained with and the
DATA settings its frames were made with (INPUT). Given weights of a run (a checkpoint
folder, its model.pdparams, or the run folder itself, which means its TSM_best), eval.py,
predict.py and export.py start from those recorded settings where the config file and the
overrides leave a key unset: they replace the defaults, and a value the file or an override
sets wins. Such an explicit value that differs from the record is reported: refused for a
MODEL setting that changes what the weights compute (loading would refuse it too), a
warning naming both values for an input setting.
"""
import logging
import os

from configs.config import ConfigError, checked, merged, model_defaults, read_sources, shown
from models.weights import find_best, is_checkpoint, read_state
from models.weights.checkpoint import STATE_FILE
from models.weights.convert import COMPUTATION
from models.weights.published import checkpoint_of

log = logging.getLogger(__name__)

# The DATA keys that decide the frames a network is fed at evaluation: a run records them.
INPUT = ('short_size', 'target_size', 'mean', 'std', 'resize')


def input_settings(cfg):
    """The INPUT settings of `cfg`, as a checkpoint records them."""
    return {key: cfg['DATA'][key] for key in INPUT}


def run_weights(spec):
    """`spec`, or the best weights (TSM_best, TSN_best, ...) of the run folder `spec` names."""
    if os.path.isdir(spec) and not is_checkpoint(spec):
        return find_best(spec) or spec
    return spec


def recorded(spec):
    """{'MODEL': {...}, 'DATA': {...}}: the settings the checkpoint whose weights `spec`
    names records (no DATA ones in a checkpoint written before they were), or None when
    `spec` is not a checkpoint's."""
    folder = checkpoint_of(spec)
    if folder is None:
        return None
    state = read_state(folder)
    known = model_defaults()
    return {'MODEL': {k: v for k, v in state['model'].items() if k in known},
            'DATA': {k: v for k, v in state.get('input', {}).items() if k in INPUT}}


def _explicit(sources):
    """{(SECTION, key): the source that sets it last}."""
    return {(section, key): source for source, updates in sources
            for section, values in updates.items() for key in values}


def _check_explicit(record, given, explicit, spec):
    """Refuse explicit MODEL values that change what the weights compute; warn of explicit
    input values that differ from the record. Both values are named."""
    refused, keys = [], []
    for section, values in record.items():
        for key, value in values.items():
            if (section, key) not in explicit or given[section][key] == value:
                continue
            where = f'{explicit[section, key]}: {section}.{key} {shown(given[section][key])}'
            if section == 'MODEL' and key in COMPUTATION:
                refused.append(f'{where}, but {spec} was trained with {shown(value)}')
                keys.append(f'MODEL.{key}')
            elif section == 'DATA':
                log.warning('%s, but %s was trained on frames made with %s: the model is fed '
                            'other frames than it learnt from; unset it to take the recorded '
                            'value', where, spec, shown(value))
    if refused:
        raise ConfigError('; '.join(refused) + ': the weights would not compute what they '
                          f'learnt; unset {" and ".join(keys)} to take the recorded '
                          f'value{"s" if len(keys) > 1 else ""}')


def load_config(path, overrides, section):
    """configs.config.load_config for a script that runs the weights of cfg[section] (TEST
    or INFER): the settings those weights record, where they are a run's, are the defaults
    (see the module doc); one line logs those taken."""
    sources = read_sources(path, overrides)
    given = merged(sources)
    settings = given[section]
    if settings['infer_model']:  # an exported model: models.deploy.predictor checks its own record
        return checked(given, path)
    spec = run_weights(settings['weights'])
    if spec != settings['weights']:
        log.info('%s.weights %s: a run folder, so its %s', section, settings['weights'],
                 os.path.basename(spec))
        sources.append((f'{section}.weights', {section: {'weights': spec}}))
    record = recorded(spec)
    if record is None:
        return checked(merged(sources), path)
    explicit = _explicit(sources)
    _check_explicit(record, given, explicit, spec)
    taken = [f'{section}.{key}={shown(value)}' for section, values in record.items()
             for key, value in values.items()
             if (section, key) not in explicit and given[section][key] != value]
    if taken:
        log.info('%s: took its recorded %s (the config and overrides leave them unset)', spec,
                 ', '.join(taken))
    return checked(merged([(os.path.join(checkpoint_of(spec), STATE_FILE), record)] + sources),
                   path)
