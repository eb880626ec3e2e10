//! The built-in `tpe` strategy: the SDK's Tree-structured Parzen Estimator
//! ([`nas_plugin_sdk::tpe::Tpe`], documented there), exported as a component.

export_strategy!(nas_plugin_sdk::tpe::Tpe);
use nas_plugin_sdk::export_strategy;
